package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/outpost-sms/outpost/store"
)

func Example() {
	dir, _ := os.MkdirTemp("", "outpost")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(dir, "outpost.db"), store.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	text := "hello"
	m := &store.Message{Direction: store.Out, Peer: "+15555550100", Text: &text}
	err = s.Update(ctx, func(tx *store.Tx) error {
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		return tx.InsertDelivery(&store.Delivery{MessageID: m.ID, Connector: "sms", Recipient: m.Peer}, "accepted")
	})
	fmt.Println(err)
	_ = s.View(ctx, func(tx *store.Tx) error {
		ds, _ := tx.Deliveries(m.ID)
		fmt.Println(ds[0].Connector, ds[0].State)
		return nil
	})
	// Output:
	// <nil>
	// sms queued
}
