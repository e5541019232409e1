package ident_test

import (
	"errors"
	"fmt"

	"github.com/storeagent/storeagent/agent/ident"
)

func ExampleRules_ParseScan() {
	rules := ident.DefaultRules()
	rules.QRForms = append(rules.QRForms, "https://shop.example/l?card={id}")
	rules.DeviceIDs = []string{"KIOSK-02"}
	if err := rules.Validate(); err != nil {
		panic(err)
	}
	for _, scan := range []string{
		"7992 7398 713",
		"https://SHOP.example/l?utm=poster&card=79927398713",
		"APP:u_9f8A7b",
		"79927398710",
		"kiosk-02",
	} {
		id, err := rules.ParseScan(scan)
		switch {
		case errors.Is(err, ident.ErrBlocked):
			fmt.Println("not usable:", err)
		case err != nil:
			fmt.Println("rejected:", ident.ReasonOf(err))
		default:
			fmt.Println(id, id.Mask())
		}
	}
	// Output:
	// loyalty:<redacted, 11 chars> loyalty:•••••••••13
	// loyalty:<redacted, 11 chars> loyalty:•••••••••13
	// app:<redacted, 8 chars> app:•••
	// rejected: bad_check_digit
	// not usable: invalid identifier: blocked
}

func ExampleRules_Normalize() {
	rules := ident.DefaultRules()
	rules.DefaultCountryCode = "44"
	for _, in := range []struct {
		kind ident.Kind
		raw  string
	}{
		{ident.Phone, "07700 900123"},
		{ident.Email, " Jane.Doe@Example.COM "},
		{ident.Loyalty, "0000-0000"},
	} {
		id, err := rules.Normalize(in.kind, in.raw)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(id.Mask())
	}
	// Output:
	// phone:•••••••••••23
	// email:j•••@•••.com
	// invalid loyalty identifier: blocked
}

func ExampleHasher_Sum() {
	h, err := ident.NewHasher([]byte("0123456789abcdef0123456789abcdef")) // the tenant key
	if err != nil {
		panic(err)
	}
	id, err := ident.DefaultRules().Normalize(ident.Loyalty, "7992 7398 713")
	if err != nil {
		panic(err)
	}
	sum := h.Sum(id) // HMAC-SHA256(key, "loyalty:79927398713")
	fmt.Printf("%x\n", sum[:8])
	// Output: 7876b6fd020e4317
}
