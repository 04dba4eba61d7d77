package sim

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal whose terminal side looks like a modem's serial
// device: a symlink at Path points to it.
type PTY struct {
	Path   string
	master *os.File
	slave  *os.File
}

// OpenPTY creates a pty in raw mode and links path to its terminal side,
// replacing an older link at path.
func OpenPTY(path string) (*PTY, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	// pty.Open's master does blocking reads, which Close cannot
	// interrupt; a non-blocking copy goes through the poller, so closing
	// it (on unplug or shutdown) ends a pending read at once.
	if master, err = nonBlocking(master); err != nil {
		slave.Close()
		return nil, fmt.Errorf("open pty: %w", err)
	}
	if err := makeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("raw mode: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			master.Close()
			slave.Close()
			return nil, fmt.Errorf("%s exists and is not a symlink", path)
		}
		os.Remove(path)
	}
	if err := os.Symlink(slave.Name(), path); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("link %s: %w", path, err)
	}
	return &PTY{Path: path, master: master, slave: slave}, nil
}

func nonBlocking(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Serve runs the modem on the pty until ctx ends. The modem side keeps the
// terminal side open, so a client may close and reopen the device.
func (p *PTY) Serve(ctx context.Context, m *Modem) error {
	err := m.Serve(ctx, p.master)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Close unplugs the modem: the device disappears and a client reading it
// gets an error.
func (p *PTY) Close() error {
	os.Remove(p.Path)
	return errors.Join(p.master.Close(), p.slave.Close())
}
