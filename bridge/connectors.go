package bridge

import (
	"maps"
	"slices"
)

// ConnectorNames are the names of the connectors added, sorted: what the
// console offers to pause.
func (h *Router) ConnectorNames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.connectors))
}
