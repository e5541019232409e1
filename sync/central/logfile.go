package central

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
)

// Data files are append-only logs of frames:
//
//	file  = magic (8 bytes) frame*
//	frame = length (uint32 LE) crc (uint32 LE, CRC-32C of payload) payload
//
// A crash can leave a torn tail: a partial frame, a last frame whose CRC
// does not match, or a run of zero bytes (a file extended but not written).
// Opening for append truncates a torn tail; readers stop before it. Any
// other damage is ErrCorrupt: nothing is ever dropped from the middle.

const (
	frameHeader = 8
	// maxFrame bounds a payload: a journal record holds at most one
	// EventBatch (256 KiB) with its ids; a change log record one signed
	// change (65 KiB).
	maxFrame = 1 << 20
	// writeBuffer is the journal's write buffer: many records per write.
	writeBuffer = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Magics of the two kinds of data file.
const (
	magicJournal = "CDPSIMJ1"
	magicChanges = "CDPSIMC1"
)

// scanResult says where the good frames of a file end.
type scanResult struct {
	end  int64 // offset after the last good frame
	torn int64 // bytes after end that form a torn tail
}

// scanFrames reads a whole data file of size bytes from r and calls fn
// with the offset and payload of each good frame, in order. payload is
// only valid during the call. An empty file (size 0) is a new file.
func scanFrames(r io.Reader, size int64, magic string, fn func(off int64, payload []byte) error) (scanResult, error) {
	if size == 0 {
		return scanResult{}, nil
	}
	br := bufio.NewReaderSize(r, 256<<10)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != magic {
		if size < int64(len(magic)) && err != nil {
			return scanResult{torn: size}, nil // a crash while creating the file
		}
		return scanResult{}, fmt.Errorf("%w: not a %s file", ErrCorrupt, magic)
	}
	off := int64(len(magic))
	var hdr [frameHeader]byte
	buf := make([]byte, 0, 64<<10)
	for off < size {
		rest := size - off
		if rest < frameHeader {
			return scanResult{end: off, torn: rest}, nil // a torn header
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return scanResult{}, fmt.Errorf("read frame at %d: %w", off, err)
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		sum := binary.LittleEndian.Uint32(hdr[4:8])
		if n == 0 || n > maxFrame {
			return zeroTail(br, hdr[:], off, rest)
		}
		if frameHeader+n > rest {
			return scanResult{end: off, torn: rest}, nil
		}
		buf = grow(buf, int(n))
		if _, err := io.ReadFull(br, buf); err != nil {
			return scanResult{}, fmt.Errorf("read frame at %d: %w", off, err)
		}
		if crc32.Checksum(buf, castagnoli) != sum {
			if frameHeader+n == rest {
				return scanResult{end: off, torn: rest}, nil
			}
			return scanResult{}, fmt.Errorf("%w: checksum mismatch in the frame at offset %d", ErrCorrupt, off)
		}
		if err := fn(off, buf); err != nil {
			return scanResult{}, fmt.Errorf("frame at offset %d: %w", off, err)
		}
		off += frameHeader + n
	}
	return scanResult{end: off}, nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// zeroTail accepts a frame header with an impossible length only when it
// and everything after it are zero bytes.
func zeroTail(br io.Reader, hdr []byte, off, rest int64) (scanResult, error) {
	corrupt := fmt.Errorf("%w: bad frame length at offset %d", ErrCorrupt, off)
	if !allZero(hdr) {
		return scanResult{}, corrupt
	}
	buf := make([]byte, 32<<10)
	for left := rest - frameHeader; left > 0; {
		n, err := br.Read(buf[:min(int64(len(buf)), left)])
		if !allZero(buf[:n]) {
			return scanResult{}, corrupt
		}
		left -= int64(n)
		if err != nil && left > 0 {
			return scanResult{}, fmt.Errorf("read tail at %d: %w", off, err)
		}
	}
	return scanResult{end: off, torn: rest}, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// appendFrame appends the frame of payload to dst.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// logFile is a data file open for append. It is not safe for concurrent
// use: its owner (the recorder goroutine, or a storeLog under its lock)
// serialises calls. ReadAt may run concurrently with appends, on bytes
// already synced.
type logFile struct {
	path string
	f    *os.File
	w    *bufio.Writer
	size int64 // bytes in the file, buffered ones included
}

// openLogFile opens or creates the data file at path, replays its good
// frames through fn, truncates a torn tail (logging it) and returns the
// file positioned for append.
func openLogFile(path, magic string, log *slog.Logger, fn func(off int64, payload []byte) error) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open data file: %w", err)
	}
	l, err := prepareLogFile(f, path, magic, log, fn)
	if err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func prepareLogFile(f *os.File, path, magic string, log *slog.Logger, fn func(off int64, payload []byte) error) (*logFile, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	res, err := scanFrames(f, fi.Size(), magic, fn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	end := res.end
	if res.torn > 0 {
		log.Warn("dropping the torn tail of a data file", "path", path, "bytes", res.torn)
	}
	if res.torn > 0 || end == 0 {
		if err := f.Truncate(end); err != nil {
			return nil, fmt.Errorf("truncate %s: %w", path, err)
		}
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek %s: %w", path, err)
	}
	l := &logFile{path: path, f: f, w: bufio.NewWriterSize(f, writeBuffer), size: end}
	if end == 0 {
		if _, err := l.w.WriteString(magic); err != nil {
			return nil, err
		}
		l.size = int64(len(magic))
		if err := l.sync(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// append buffers the frame of payload and returns its offset. It is
// durable only after sync.
func (l *logFile) append(payload []byte) (int64, error) {
	if len(payload) == 0 || len(payload) > maxFrame {
		return 0, fmt.Errorf("append to %s: record of %d bytes", l.path, len(payload))
	}
	off := l.size
	var hdr [frameHeader]byte
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(hdr[4:8], crc32.Checksum(payload, castagnoli))
	if _, err := l.w.Write(hdr[:]); err != nil {
		return 0, fmt.Errorf("append to %s: %w", l.path, err)
	}
	if _, err := l.w.Write(payload); err != nil {
		return 0, fmt.Errorf("append to %s: %w", l.path, err)
	}
	l.size += frameHeader + int64(len(payload))
	return off, nil
}

// sync writes the buffer out and fsyncs: what was appended is durable
// when it returns nil.
func (l *logFile) sync() error {
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", l.path, err)
	}
	return nil
}

// readFrame reads the payload of the frame at off, which must be synced.
func (l *logFile) readFrame(off int64) ([]byte, error) {
	return readFrameAt(l.f, off)
}

func readFrameAt(r io.ReaderAt, off int64) ([]byte, error) {
	var hdr [frameHeader]byte
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return nil, fmt.Errorf("read frame at %d: %w", off, err)
	}
	n := binary.LittleEndian.Uint32(hdr[0:4])
	if n == 0 || n > maxFrame {
		return nil, fmt.Errorf("%w: bad frame length at offset %d", ErrCorrupt, off)
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, off+frameHeader); err != nil {
		return nil, fmt.Errorf("read frame at %d: %w", off, err)
	}
	if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(hdr[4:8]) {
		return nil, fmt.Errorf("%w: checksum mismatch in the frame at offset %d", ErrCorrupt, off)
	}
	return buf, nil
}

// close syncs and closes the file.
func (l *logFile) close() error {
	return errors.Join(l.sync(), l.f.Close())
}

// readLogFile replays a data file read-only, for reports: a torn tail is
// skipped and reported in bytes, a missing file is no frames.
func readLogFile(path, magic string, fn func(off int64, payload []byte) error) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open data file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	res, err := scanFrames(f, fi.Size(), magic, fn)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return res.torn, nil
}
