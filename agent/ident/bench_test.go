package ident_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/storeagent/storeagent/agent/ident"
)

var sinkSum [32]byte

// BenchmarkHasherSum measures the hot path of identify: one keyed hash. The
// baseline is the plain crypto/hmac way (a new keyed HMAC per call), in the
// same run.
func BenchmarkHasherSum(b *testing.B) {
	id := ident.ID{Kind: ident.Loyalty, Value: "4111111111111111"}
	b.Run("pooled", func(b *testing.B) {
		h := newHasher(b)
		b.ReportAllocs()
		for b.Loop() {
			sinkSum = h.Sum(id)
		}
	})
	b.Run("pooled-parallel", func(b *testing.B) {
		h := newHasher(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var s [32]byte
			for pb.Next() {
				s = h.Sum(id)
			}
			_ = s
		})
	})
	b.Run("baseline-hmac-new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := hmac.New(sha256.New, testKey)
			m.Write([]byte(string(id.Kind) + ":" + id.Value))
			copy(sinkSum[:], m.Sum(nil))
		}
	})
}

var sinkID ident.ID

// BenchmarkParseScan measures ParseScan for each form a scan takes.
func BenchmarkParseScan(b *testing.B) {
	r := scanRules()
	for _, bc := range []struct{ name, in string }{
		{"digits", "4111111111111111"},
		{"digits-grouped", "4111 1111 1111 1111"},
		{"qr-text", "LOYALTY:4111111111111111"},
		{"qr-url", "https://shop.example/l?utm_source=poster&card=4111111111111111"},
		{"app", "APP:u_9f8A7b-6c5D"},
		{"rejected-check-digit", "4111111111111112"},
		{"rejected-junk", "hello world, this is no identifier"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkID, _ = r.ParseScan(bc.in)
			}
		})
	}
}
