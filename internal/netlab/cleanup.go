//go:build linux

package netlab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// labNameOf returns the lab name that name starts with (prefix followed by
// 6 lowercase hex digits), or "" if name is not of a lab of that prefix.
func labNameOf(prefix, name string) string {
	if !strings.HasPrefix(name, prefix) || len(name) < len(prefix)+6 {
		return ""
	}
	id := name[len(prefix) : len(prefix)+6]
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return name[:len(prefix)+6]
}

// Cleanup removes what dead labs of that prefix left behind (a test binary
// that was killed, timed out or crashed before Lab.Close): it kills the
// processes still running in their namespaces, deletes their links,
// unmounts and removes /run/netns/<lab>-*, deletes links named <lab>* in
// the caller's namespace, and removes their lock files.
//
// A lab is alive while its creator holds the flock on
// /run/netlab/<lab>.lock; the kernel drops that lock when the process dies,
// however it dies. Cleanup never touches a live lab, so it is safe to run
// while other test binaries use labs of the same prefix. Names of the
// prefix that are not followed by 6 hex digits are not a lab's and are
// left alone. New calls Cleanup once per prefix per process.
func Cleanup(prefix string) error {
	if prefix == "" {
		return errors.New("netlab: Cleanup needs a prefix")
	}
	labs := map[string]bool{}
	nsByLab := map[string][]string{}
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if lab := labNameOf(prefix, e.Name()); lab != "" && strings.HasPrefix(e.Name(), lab+"-") {
				labs[lab] = true
				nsByLab[lab] = append(nsByLab[lab], e.Name())
			}
		}
	}
	if ents, err := os.ReadDir(lockDir); err == nil {
		for _, e := range ents {
			n := e.Name()
			if strings.HasPrefix(n, ".tmp-") {
				// A lab that died between creating and publishing its lock.
				if labNameOf(prefix, strings.TrimPrefix(n, ".tmp-")) != "" {
					if f, ok := tryLock(filepath.Join(lockDir, n)); ok {
						os.Remove(f.Name())
						f.Close()
					}
				}
				continue
			}
			if lab := labNameOf(prefix, n); lab != "" && n == lab+".lock" {
				labs[lab] = true
			}
		}
	}
	rootLinks := map[string][]netlink.Link{}
	links, err := netlink.LinkList()
	if err == nil || errors.Is(err, netlink.ErrDumpInterrupted) {
		for _, lk := range links {
			if lab := labNameOf(prefix, lk.Attrs().Name); lab != "" {
				labs[lab] = true
				rootLinks[lab] = append(rootLinks[lab], lk)
			}
		}
	}

	names := make([]string, 0, len(labs))
	for lab := range labs {
		names = append(names, lab)
	}
	sort.Strings(names)
	var errs []error
	for _, lab := range names {
		lockPath := filepath.Join(lockDir, lab+".lock")
		lock, dead := tryLock(lockPath)
		if !dead {
			continue
		}
		// Holding the dead lab's lock keeps concurrent Cleanups off it.
		nss := nsByLab[lab]
		// Bridge namespace last: deleting its veth ends removes the pairs.
		sort.Slice(nss, func(i, j int) bool {
			return !strings.HasSuffix(nss[i], "-bridge") && strings.HasSuffix(nss[j], "-bridge")
		})
		for _, ns := range nss {
			if err := removeNamespace(ns); err != nil {
				errs = append(errs, err)
			}
		}
		for _, lk := range rootLinks[lab] {
			if err := netlink.LinkDel(lk); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("delete link %s: %w", lk.Attrs().Name, err))
			}
		}
		if lock != nil {
			os.Remove(lockPath)
			lock.Close()
		}
	}
	return errors.Join(errs...)
}

// tryLock reports whether the lock file's owner is gone: the file does not
// exist, or its flock can be taken (then the open, locked file is returned).
func tryLock(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, errors.Is(err, os.ErrNotExist)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// removeNamespace kills the processes in a named namespace, deletes its
// links and removes its name.
func removeNamespace(name string) error {
	path := filepath.Join(netnsDir, name)
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	killNetnsProcs(st.Ino)
	if ns, err := netns.GetFromPath(path); err == nil {
		if h, err := netlink.NewHandleAt(ns); err == nil {
			links, _ := h.LinkList()
			for _, lk := range links {
				if lk.Attrs().Name != "lo" {
					h.LinkDel(lk)
				}
			}
			h.Close()
		}
		ns.Close()
	}
	if err := deleteNamedNS(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// killNetnsProcs sends SIGKILL to every process whose network namespace
// has that nsfs inode.
func killNetnsProcs(ino uint64) {
	want := "net:[" + strconv.FormatUint(ino, 10) + "]"
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 || pid == self {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil && l == want {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
