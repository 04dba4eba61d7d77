package pdu

// Delivery outcomes of a status report (3GPP TS 23.040 9.2.3.15).
const (
	ReportDelivered     = "delivered"
	ReportTrying        = "trying"           // SC still trying: not final
	ReportFailedPerm    = "failed"           // permanent error, SC stopped
	ReportFailedTemp    = "failed_temporary" // temporary error, SC stopped
	ReportUnknownStatus = "unknown"
)

// ReportOutcome maps a TP-ST value to what it means for the message. Final
// is false while the service centre is still trying.
func ReportOutcome(st int) (outcome string, final bool) {
	switch {
	case st >= 0x00 && st <= 0x1F:
		// 0x00 received; 0x01 forwarded, unconfirmed; 0x02 replaced;
		// 0x03-0x1F reserved or SC-specific values of the same group.
		return ReportDelivered, true
	case st >= 0x20 && st <= 0x3F:
		return ReportTrying, false
	case st >= 0x40 && st <= 0x5F:
		return ReportFailedPerm, true
	case st >= 0x60 && st <= 0x7F:
		return ReportFailedTemp, true
	default:
		// Values above 0x7F are reserved; the spec says to treat them as
		// a permanent failure ("service rejected").
		return ReportFailedPerm, true
	}
}

// StatusText describes a TP-ST value for people.
func StatusText(st int) string {
	switch st {
	case 0x00:
		return "received by the recipient"
	case 0x01:
		return "forwarded, delivery unconfirmed"
	case 0x02:
		return "replaced by the service centre"
	case 0x20:
		return "congestion, still trying"
	case 0x21:
		return "recipient busy, still trying"
	case 0x22:
		return "no response from recipient, still trying"
	case 0x23:
		return "service rejected, still trying"
	case 0x24:
		return "quality of service not available, still trying"
	case 0x25:
		return "error in recipient, still trying"
	case 0x40:
		return "remote procedure error"
	case 0x41:
		return "incompatible destination"
	case 0x42:
		return "connection rejected by recipient"
	case 0x43:
		return "not obtainable"
	case 0x44:
		return "quality of service not available"
	case 0x45:
		return "no interworking available"
	case 0x46:
		return "validity period expired"
	case 0x47:
		return "deleted by originating entity"
	case 0x48:
		return "deleted by service centre administration"
	case 0x49:
		return "message does not exist"
	case 0x60:
		return "congestion, service centre gave up"
	case 0x61:
		return "recipient busy, service centre gave up"
	case 0x62:
		return "no response from recipient, service centre gave up"
	case 0x63:
		return "service rejected, service centre gave up"
	case 0x64:
		return "quality of service not available, service centre gave up"
	case 0x65:
		return "error in recipient, service centre gave up"
	}
	o, _ := ReportOutcome(st)
	return o
}
