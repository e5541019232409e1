package scanner

// Symbology is the barcode type of a scan, read from its AIM symbology
// identifier (ISO/IEC 15424). The zero value means the port does not send
// identifiers (Config.AIM is off).
type Symbology struct {
	// AIM is the identifier as sent, e.g. "]E0".
	AIM string
	// Name is a readable name, e.g. "EAN-13", or "unknown" for a code
	// character this package does not know.
	Name string
}

// String returns the name, or "" when the port sends no identifiers.
func (s Symbology) String() string { return s.Name }

// aimIdentifierLen is the length of an AIM identifier: "]", a code
// character, a modifier character.
const aimIdentifierLen = 3

// aimByID names the identifiers whose modifier changes the meaning enough
// to matter to a consumer (GS1 content, EAN-8 versus EAN-13).
var aimByID = map[string]string{
	"]E0": "EAN-13",
	"]E4": "EAN-8",
	"]C1": "GS1-128",
	"]d2": "GS1 DataMatrix",
	"]Q3": "GS1 QR Code",
	"]e0": "GS1 DataBar",
}

// aimByCode names the rest by their code character alone.
var aimByCode = map[byte]string{
	'A': "Code 39",
	'C': "Code 128",
	'E': "EAN/UPC",
	'F': "Codabar",
	'G': "Code 93",
	'H': "Code 11",
	'I': "Interleaved 2 of 5",
	'L': "PDF417",
	'M': "MSI",
	'P': "Plessey",
	'Q': "QR Code",
	'R': "Straight 2 of 5",
	'S': "Straight 2 of 5",
	'U': "MaxiCode",
	'X': "other",
	'd': "DataMatrix",
	'e': "GS1 DataBar",
	'z': "Aztec",
}

// parseAIM splits an AIM identifier off the front of a frame. ok is false
// when the frame does not start with one: "]", a letter, then a letter or
// digit.
func parseAIM(b []byte) (sym Symbology, rest []byte, ok bool) {
	if len(b) < aimIdentifierLen || b[0] != ']' || !isASCIILetter(b[1]) || !isASCIIAlnum(b[2]) {
		return Symbology{}, b, false
	}
	id := string(b[:aimIdentifierLen])
	name, known := aimByID[id]
	if !known {
		name, known = aimByCode[b[1]]
	}
	if !known {
		name = "unknown"
	}
	return Symbology{AIM: id, Name: name}, b[aimIdentifierLen:], true
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isASCIIAlnum(c byte) bool { return isASCIILetter(c) || c >= '0' && c <= '9' }
