package ident

// LuhnValid reports whether digits, at least 2 ASCII digits, end with their
// Luhn mod 10 check digit (ISO/IEC 7812). 79927398713 is valid.
func LuhnValid(digits string) bool {
	n := len(digits)
	if n < 2 || !allDigits(digits) {
		return false
	}
	return luhnSum(digits, false)%10 == 0
}

// LuhnCheckDigit returns the Luhn check digit to append to payload, as an
// ASCII digit ('0' to '9'), or 0 when payload is empty or holds a
// non-digit.
func LuhnCheckDigit(payload string) byte {
	if payload == "" || !allDigits(payload) {
		return 0
	}
	return '0' + byte((10-luhnSum(payload, true)%10)%10)
}

// luhnSum sums the digits of s from the right, doubling every other one,
// starting with the rightmost when doubleFirst.
func luhnSum(s string, doubleFirst bool) int {
	sum := 0
	double := doubleFirst
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum
}

// GS1Valid reports whether digits, at least 2 ASCII digits, end with their
// GS1 mod 10 check digit (EAN-8, UPC-A, EAN-13, GTIN-14, SSCC ...).
// 4006381333931 is valid.
func GS1Valid(digits string) bool {
	n := len(digits)
	if n < 2 || !allDigits(digits) {
		return false
	}
	return GS1CheckDigit(digits[:n-1]) == digits[n-1]
}

// GS1CheckDigit returns the GS1 check digit to append to payload, as an
// ASCII digit: weights 3 and 1 alternate from the rightmost digit of
// payload, which weighs 3. It returns 0 when payload is empty or holds a
// non-digit.
func GS1CheckDigit(payload string) byte {
	if payload == "" || !allDigits(payload) {
		return 0
	}
	sum := 0
	for i, w := len(payload)-1, 3; i >= 0; i, w = i-1, 4-w {
		sum += int(payload[i]-'0') * w
	}
	return '0' + byte((10-sum%10)%10)
}
