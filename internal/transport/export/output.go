package export

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// output is where an export writes: stdout, or FILE.partial renamed to FILE at the end.
type output struct {
	buf       *bufio.Writer
	file      *os.File // nil for stdout
	tmp, path string
	done      bool
}

// openOutput opens path's FILE.partial, which must not exist; an empty path is stdout.
func openOutput(stdout io.Writer, path string) (*output, error) {
	if path == "" {
		return &output{buf: bufio.NewWriterSize(stdout, 1<<16)}, nil
	}
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, fmt.Errorf("export: create %s: %w (a leftover of an export that stopped may be moved away or deleted)", tmp, err)
	}
	return &output{buf: bufio.NewWriterSize(f, 1<<16), file: f, tmp: tmp, path: path}, nil
}

// flush writes what is buffered and, for a file, syncs it.
func (o *output) flush() error {
	if err := o.buf.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", o.name(), err)
	}
	if o.file != nil {
		if err := o.file.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", o.tmp, err)
		}
	}
	return nil
}

func (o *output) name() string {
	if o.file == nil {
		return "stdout"
	}
	return o.tmp
}

// failed handles an error writing the output: a file that may end in half an event is removed.
func (o *output) failed(err error) error {
	if o.file != nil {
		_ = o.file.Close()
		_ = os.Remove(o.tmp)
		o.done = true
	}
	return fmt.Errorf("export to %s: %w", o.name(), err)
}

// commit flushes, syncs and renames FILE.partial to FILE, then syncs the directory.
func (o *output) commit() error {
	if err := o.flush(); err != nil {
		return o.failed(err)
	}
	if o.file == nil {
		return nil
	}
	o.done = true
	if err := o.file.Close(); err != nil {
		_ = os.Remove(o.tmp)
		return fmt.Errorf("close %s: %w", o.tmp, err)
	}
	if err := os.Link(o.tmp, o.path); err != nil { // unlike rename, never replaces a file made meanwhile
		_ = os.Remove(o.tmp)
		return fmt.Errorf("export: %s: %w", o.path, err)
	}
	if err := os.Remove(o.tmp); err != nil {
		return fmt.Errorf("export: remove %s: %w", o.tmp, err)
	}
	if dir, err := os.Open(filepath.Dir(o.path)); err == nil {
		err = dir.Sync()
		_ = dir.Close()
		if err != nil {
			return fmt.Errorf("sync the directory of %s: %w", o.path, err)
		}
	}
	return nil
}

// abandon closes a file the export neither committed nor removed: an interrupted export's
// FILE.partial stays, whole events only, for the operator to keep or remove.
func (o *output) abandon() {
	if o.file != nil && !o.done {
		_ = o.file.Close()
	}
}
