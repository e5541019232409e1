package support

import (
	"errors"
	"time"

	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
)

// Check digit verdicts of a ScanEvent.
const (
	checkOK  = "ok"
	checkBad = "bad"
)

// DescribeFrame is a frame read on a port as `storectl scan` shows it:
// a reject with its reason, or a good frame decoded by DescribeCode.
func DescribeFrame(f scanner.Frame, port, path string, rules ident.Rules) localapi.ScanEvent {
	ev := localapi.ScanEvent{At: f.At, Port: port, Path: path, Symbology: f.Symbology.Name, Bytes: f.RawLen}
	if !f.OK() {
		ev.Event, ev.Reject, ev.Count = localapi.ScanReject, f.Reason.String(), 1
		return ev
	}
	ev.Event = localapi.ScanFrame
	DescribeCode(&ev, f.Code, rules)
	return ev
}

// DescribeScan is a good scan the daemon handed to its consumer.
func DescribeScan(s scanner.Scan, path string, rules ident.Rules) localapi.ScanEvent {
	ev := localapi.ScanEvent{Event: localapi.ScanFrame, At: time.UnixMilli(s.UnixMilli), Port: s.Port, Path: path, Symbology: s.Symbology.Name}
	DescribeCode(&ev, s.Code, rules)
	return ev
}

// DescribeCode reads code as the agent would (ident.Rules.ParseScan) and
// fills ev: valid or the reason, the kind, the check digit verdict for a
// loyalty number, and the identifier masked. The code itself never goes
// into ev.
func DescribeCode(ev *localapi.ScanEvent, code string, rules ident.Rules) {
	checked := rules.Loyalty.Check != ident.CheckNone
	id, err := rules.ParseScan(code)
	if err == nil {
		ev.Valid, ev.Kind, ev.Identifier = true, string(id.Kind), id.Mask()
		if id.Kind == ident.Loyalty && checked {
			ev.CheckDigit = checkOK
		}
		return
	}
	var ie *ident.InvalidError
	if !errors.As(err, &ie) {
		ev.Reason = "invalid"
		return
	}
	ev.Reason, ev.Kind = string(ie.Reason), string(ie.Kind)
	if ie.Reason == ident.ReasonBadCheckDigit {
		ev.CheckDigit = checkBad
	}
	ev.Identifier = maskInvalid(ie.Kind, code)
}

// maskInvalid masks a code that is not a valid identifier: a loyalty
// number as a valid one would be (its digits, all but the last two hidden),
// anything else as its kind alone.
func maskInvalid(kind ident.Kind, code string) string {
	if kind == ident.Loyalty {
		var digits []byte
		for i := 0; i < len(code); i++ {
			if code[i] >= '0' && code[i] <= '9' {
				digits = append(digits, code[i])
			}
		}
		if len(digits) > 0 {
			return ident.ID{Kind: ident.Loyalty, Value: string(digits)}.Mask()
		}
	}
	if kind == "" {
		return masked
	}
	return string(kind) + ":" + masked
}
