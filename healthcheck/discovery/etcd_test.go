package discovery

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startEtcd runs Debian's etcd-server on loopback ports in a temp dir.
func startEtcd(t *testing.T) (string, *exec.Cmd) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd not installed (Debian package etcd-server): ", err)
	}
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--name", "t", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "t="+peer)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("etcd log:\n%s", b)
		}
	})
	return client, cmd
}

func TestEtcdFollowsThePrefixAndKeepsTheSetWhenEtcdDies(t *testing.T) {
	url, cmd := startEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	put := func(k, v string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		for { // etcd may still be starting
			if v == "" {
				_, err = cli.Delete(ctx, k)
			} else {
				_, err = cli.Put(ctx, k, v)
			}
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	put("/svc/web/a", `{"address":"10.0.0.1:8080","weight":2}`)
	put("/svc/other/x", `{"address":"10.9.9.9:1"}`)

	r := &recorder{}
	p := &Etcd{Endpoints: []string{url}, Prefix: "/svc/web/", Weight: 1, Retry: 300 * time.Millisecond}
	w := NewWatcher("e", "etcd", "web", p, 20*time.Millisecond, r.apply)
	w.Start()
	defer w.Stop()
	follows := func(what string, want ...Endpoint) {
		t.Helper()
		waitFor(t, what, func() bool { return slices.Equal(r.last(), want) })
	}
	follows("the initial set", Endpoint{"10.0.0.1:8080", 2})
	put("/svc/web/b", `{"address":"10.0.0.2:8080"}`)
	follows("an added key", Endpoint{"10.0.0.1:8080", 2}, Endpoint{"10.0.0.2:8080", 1})
	put("/svc/web/a", `{"address":"10.0.0.1:8080","weight":7}`)
	follows("a changed key", Endpoint{"10.0.0.1:8080", 7}, Endpoint{"10.0.0.2:8080", 1})
	put("/svc/web/junk", `not json`)
	put("/svc/web/a", "")
	follows("a deleted key (junk skipped)", Endpoint{"10.0.0.2:8080", 1})
	if st := w.Status(); st.State != StateOK {
		t.Errorf("status %+v", st)
	}

	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, "stale after etcd died", func() bool { return w.Status().State == StateStale })
	if eps, _ := w.Endpoints(); !slices.Equal(eps, []Endpoint{{"10.0.0.2:8080", 1}}) {
		t.Errorf("the last set was not kept: %v", eps)
	}
	if st := w.Status(); st.Error == "" {
		t.Errorf("stale without an error: %+v", st)
	}
}
