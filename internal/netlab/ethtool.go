//go:build linux

package netlab

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Legacy ethtool commands (linux/ethtool.h). The kernel maps them onto
// netdev features: clearing TX checksumming also clears the features that
// depend on it (TSO, GSO with checksum...), as `ethtool -K dev tx off` does.
const (
	ethtoolGTXCSUM = 0x00000016
	ethtoolSTXCSUM = 0x00000017
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

func ethtoolValueIoctl(dev string, cmd, data uint32) (uint32, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	v := &ethtoolValue{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], dev)
	ifr.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return 0, errno
	}
	return v.data, nil
}

// DisableTxOffload turns off TX checksum offload on the host's Link: the
// equivalent of `ethtool -K eth0 tx off`, done with the SIOCETHTOOL ioctl
// (no ethtool binary needed). Needed on senders whose traffic crosses a
// native-mode XDP program on veth: native XDP on veth loses the "checksum
// to be filled in later" state (CHECKSUM_PARTIAL), so TCP segments arrive
// with bad checksums (TcpInCsumErrors) unless the sender computes them.
func (h *Host) DisableTxOffload() error { return h.setTxCsum(h.Link, false) }

// TxOffload reports whether TX checksum offload is on for dev.
func (h *Host) TxOffload(dev string) (bool, error) {
	var on uint32
	err := h.Do(func() (err error) {
		on, err = ethtoolValueIoctl(dev, ethtoolGTXCSUM, 0)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("netlab: %s: ethtool get tx %s: %w", h.Name, dev, err)
	}
	return on != 0, nil
}

func (h *Host) setTxCsum(dev string, on bool) error {
	var v uint32
	if on {
		v = 1
	}
	// The ioctl acts on the interface of that name in the namespace of the
	// socket, hence Do.
	err := h.Do(func() error {
		_, err := ethtoolValueIoctl(dev, ethtoolSTXCSUM, v)
		return err
	})
	if err != nil {
		return fmt.Errorf("netlab: %s: ethtool -K %s tx %v: %w", h.Name, dev, on, err)
	}
	return nil
}
