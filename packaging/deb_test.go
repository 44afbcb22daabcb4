package packaging

import (
	"bufio"
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// wantFiles is every file and folder of the package that has a mode worth
// checking, as `dpkg-deb -c` lists them. Every regular file of the package
// must be here: a file that appears in the .deb by accident fails the test.
var wantFiles = map[string]string{
	"./usr/bin/portcullis":                                        "-rwxr-xr-x",
	"./usr/lib/systemd/system/portcullis.service":                 "-rw-r--r--",
	"./etc/portcullis/":                                           "drwxr-x---",
	"./etc/portcullis/portcullis.yaml":                            "-rw-r-----",
	"./usr/lib/sysctl.d/60-portcullis.conf":                       "-rw-r--r--",
	"./usr/share/doc/portcullis/examples/dsr-backend-sysctl.conf": "-rw-r--r--",
	"./usr/share/doc/portcullis/examples/edge-node.yaml":          "-rw-r--r--",
	"./usr/share/doc/portcullis/examples/quickstart.yaml":         "-rw-r--r--",
	"./usr/share/doc/portcullis/examples/tls/":                    "drwxr-xr-x",
	"./usr/share/doc/portcullis/examples/tls/example.crt":         "-rw-r--r--",
	"./usr/share/doc/portcullis/examples/tls/example.key":         "-rw-r--r--",
	"./usr/share/doc/portcullis/examples/tls/README.md":           "-rw-r--r--",
	"./usr/share/doc/portcullis/README.md":                        "-rw-r--r--",
	"./usr/share/doc/portcullis/operations.md":                    "-rw-r--r--",
	"./usr/share/doc/portcullis/troubleshooting.md":               "-rw-r--r--",
	"./usr/share/doc/portcullis/configuration.md":                 "-rw-r--r--",
}

// wantCaps is the unit's capability set; docs/operations.md says why each.
var wantCaps = []string{"CAP_BPF", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_PERFMON"}

func TestDebianPackageHasWhatANodeNeeds(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed (Debian's dpkg package): cannot build or inspect the .deb")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: the package version comes from git describe")
	}
	root := testbin.RepoRoot()
	out := t.TempDir()

	// Exactly what `make deb` runs, into a scratch folder.
	build := exec.Command("bash", "packaging/build-deb.sh", out)
	build.Dir = root
	var stderr bytes.Buffer
	build.Stderr = &stderr
	stdout, err := build.Output()
	if err != nil {
		t.Fatalf("packaging/build-deb.sh: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(string(stdout))
	if i := strings.LastIndexByte(deb, '\n'); i >= 0 {
		deb = deb[i+1:]
	}
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("build-deb.sh printed %q, which is not a file: %v", deb, err)
	}

	fsRoot := filepath.Join(t.TempDir(), "root")
	extract := exec.Command("dpkg-deb", "-x", deb, fsRoot)
	if _, err := exec.LookPath("dpkg"); err == nil {
		extract = exec.Command("dpkg", "-x", deb, fsRoot)
	}
	if b, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", extract.Args, err, b)
	}
	ctrl := filepath.Join(t.TempDir(), "DEBIAN")
	if b, err := exec.Command("dpkg-deb", "-e", deb, ctrl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v\n%s", err, b)
	}
	bin := filepath.Join(fsRoot, "usr/bin/portcullis")

	t.Run("files have the listed modes and root ownership, and nothing else is shipped", func(t *testing.T) {
		listing := run(t, "", "dpkg-deb", "-c", deb)
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
			f := strings.Fields(line)
			if len(f) < 6 {
				t.Fatalf("unexpected dpkg-deb -c line %q", line)
			}
			mode, owner, name := f[0], f[1], f[len(f)-1]
			seen[name] = true
			if owner != "root/root" {
				t.Errorf("%s is owned by %s, want root/root", name, owner)
			}
			want, listed := wantFiles[name]
			switch {
			case listed && mode != want:
				t.Errorf("%s has mode %s, want %s", name, mode, want)
			case !listed && mode[0] == '-':
				t.Errorf("%s is in the package but not in wantFiles (shipped by accident?)", name)
			}
		}
		for name := range wantFiles {
			if !seen[name] {
				t.Errorf("%s is missing from the package", name)
			}
			if _, err := os.Lstat(filepath.Join(fsRoot, name)); err != nil {
				t.Errorf("%s was not extracted: %v", name, err)
			}
		}
	})

	t.Run("the binary is static and carries a version", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary has a dynamic loader (PT_INTERP): it was not built with CGO_ENABLED=0")
			}
		}
		v := binaryVersion(t, bin)
		if v == "" || v == "dev" {
			t.Errorf("portcullis version = %q: the version from git was not stamped", v)
		}
	})

	t.Run("dpkg-deb --info has the control fields", func(t *testing.T) {
		fields := controlFields(run(t, "", "dpkg-deb", "--info", deb))
		goarch := strings.TrimSpace(run(t, root, "go", "env", "GOARCH"))
		want := map[string]string{
			"Package":      "portcullis",
			"Section":      "net",
			"Priority":     "optional",
			"Architecture": strings.TrimSpace(run(t, root, "sh", "packaging/deb-version.sh", "--arch", goarch)),
			"Homepage":     "https://github.com/portcullis-lb/portcullis",
		}
		for k, v := range want {
			if fields[k] != v {
				t.Errorf("%s: %q, want %q", k, fields[k], v)
			}
		}
		for _, k := range []string{"Maintainer", "Description", "Installed-Size"} {
			if fields[k] == "" {
				t.Errorf("%s is empty", k)
			}
		}
		if d, ok := fields["Depends"]; ok {
			t.Errorf("Depends: %q; the binary is static and needs nothing", d)
		}
		ver := fields["Version"]
		if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(ver) {
			t.Errorf("Version %q is not a Debian version", ver)
		}
		if base := filepath.Base(deb); base != "portcullis_"+ver+"_"+fields["Architecture"]+".deb" {
			t.Errorf("file name %s does not match Version %s and Architecture %s", base, ver, fields["Architecture"])
		}
		// The package version is the binary's, in Debian's form. Untagged
		// builds embed the commit time of HEAD, which another commit may
		// have moved since the build: compare the commit id then.
		bv := binaryVersion(t, bin)
		if strings.HasSuffix(bv, "-dirty") != strings.HasSuffix(ver, "+dirty") {
			t.Errorf("binary version %q and package version %q disagree on -dirty", bv, ver)
		}
		if !strings.HasPrefix(ver, "0.0.0+git") {
			if dv := strings.TrimSpace(run(t, root, "sh", "packaging/deb-version.sh", bv)); dv != ver {
				t.Errorf("package version %q, want %q (from the binary's %q)", ver, dv, bv)
			}
		} else if id := strings.TrimSuffix(bv, "-dirty"); !strings.Contains(ver, "."+id) {
			t.Errorf("package version %q does not name the binary's commit %q", ver, id)
		}
	})

	t.Run("the default config is a conffile and passes portcullis validate", func(t *testing.T) {
		conffiles := readFile(t, filepath.Join(ctrl, "conffiles"))
		if strings.TrimSpace(conffiles) != "/etc/portcullis/portcullis.yaml" {
			t.Errorf("conffiles = %q, want only /etc/portcullis/portcullis.yaml", conffiles)
		}
		for _, cfg := range []string{"etc/portcullis/portcullis.yaml", "usr/share/doc/portcullis/examples/edge-node.yaml", "usr/share/doc/portcullis/examples/quickstart.yaml"} {
			cmd := exec.Command(bin, "validate", "--config", filepath.Join(fsRoot, cfg))
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("portcullis validate %s: %v\n%s", cfg, err, b)
			}
		}
		// Installed and started as is, it must not touch the network: admin
		// on loopback, nothing else.
		cfg := readFile(t, filepath.Join(fsRoot, "etc/portcullis/portcullis.yaml"))
		for _, line := range strings.Split(cfg, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "#") || line == "" {
				continue
			}
			for _, key := range []string{"vips:", "l7:", "cluster:", "demo:", "interface:", "token:"} {
				if strings.HasPrefix(line, key) {
					t.Errorf("default config sets %q: it should bind loopback only and hold no secret", line)
				}
			}
		}
		if !strings.Contains(cfg, "listen: 127.0.0.1:9900") {
			t.Error("default config: admin.listen is not 127.0.0.1:9900")
		}
	})

	t.Run("the unit has the key lines", func(t *testing.T) {
		u := unitKeys(readFile(t, filepath.Join(fsRoot, "usr/lib/systemd/system/portcullis.service")))
		wantType := "simple"
		if usesSDNotify(t, root) {
			wantType = "notify"
		}
		want := map[string]string{
			"Type":            wantType,
			"ExecStart":       "/usr/bin/portcullis run --config /etc/portcullis/portcullis.yaml",
			"ExecReload":      "/bin/kill -HUP $MAINPID",
			"Restart":         "on-failure",
			"NoNewPrivileges": "yes",
			"ProtectSystem":   "strict",
			"ProtectHome":     "yes",
			"ReadWritePaths":  "/var/log/portcullis",
			"LimitNOFILE":     "1048576",
			"LimitMEMLOCK":    "infinity",
			"WantedBy":        "multi-user.target",
		}
		for k, v := range want {
			if got := u[k]; len(got) != 1 || got[0] != v {
				t.Errorf("%s=%q, want %q", k, got, v)
			}
		}
		for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
			var got []string
			for _, v := range u[k] {
				got = append(got, strings.Fields(v)...)
			}
			slices.Sort(got)
			if !slices.Equal(got, wantCaps) {
				t.Errorf("%s = %v, want %v", k, got, wantCaps)
			}
		}
		if _, ok := u["ProtectKernelTunables"]; ok {
			t.Error("ProtectKernelTunables is set: the daemon writes net.ipv4.conf.*.arp_* under /proc/sys")
		}
		if _, ok := u["User"]; ok {
			t.Error("User= is set: the package creates no user (docs/operations.md)")
		}
	})

	t.Run("systemd-analyze verify accepts the unit", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze is not installed")
		}
		// Point it at the extracted binary: verify checks ExecStart exists.
		unit := readFile(t, filepath.Join(fsRoot, "usr/lib/systemd/system/portcullis.service"))
		p := filepath.Join(t.TempDir(), "portcullis.service")
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(unit, "/usr/bin/portcullis", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, b)
		}
	})

	sysctls := sysctlFile(t, readFile(t, filepath.Join(fsRoot, "usr/lib/sysctl.d/60-portcullis.conf")))
	t.Run("the sysctl files set what a node and a DSR backend need, with keys this kernel has", func(t *testing.T) {
		for k, v := range map[string]string{
			"net.ipv4.ip_nonlocal_bind":      "1",
			"net.ipv6.ip_nonlocal_bind":      "1",
			"net.ipv4.conf.all.arp_ignore":   "1",
			"net.ipv4.conf.all.arp_announce": "2",
		} {
			if sysctls[k].value != v {
				t.Errorf("60-portcullis.conf: %s = %q, want %q", k, sysctls[k].value, v)
			}
		}
		backend := sysctlFile(t, readFile(t, filepath.Join(fsRoot, "usr/share/doc/portcullis/examples/dsr-backend-sysctl.conf")))
		for k, v := range map[string]string{
			"net.ipv4.conf.all.arp_ignore":   "1",
			"net.ipv4.conf.all.arp_announce": "2",
			"net.ipv4.conf.all.rp_filter":    "2",
		} {
			if backend[k].value != v {
				t.Errorf("dsr-backend-sysctl.conf: %s = %q, want %q", k, backend[k].value, v)
			}
		}
		// A typo in a key is silently ignored at boot: every key must exist
		// here (except those marked '-', optional by design, and the
		// backend's per-interface ones, which name the backend's NIC).
		for _, set := range []map[string]sysctl{sysctls, backend} {
			for k, s := range set {
				if s.optional || strings.Contains(k, ".eth0.") {
					continue
				}
				if _, err := os.Stat(filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))); err != nil {
					t.Errorf("%s: no such sysctl on this kernel: %v", k, err)
				}
			}
		}
	})

	t.Run("maintainer scripts parse, reload systemd and create no user", func(t *testing.T) {
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			p := filepath.Join(ctrl, s)
			st, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", s, err)
			}
			if st.Mode().Perm()&0o111 == 0 {
				t.Errorf("%s is not executable (%v)", s, st.Mode())
			}
			if b, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
				t.Errorf("sh -n %s: %v\n%s", s, err, b)
			}
			body := readFile(t, p)
			for _, bad := range []string{"useradd", "adduser", "groupadd", "addgroup"} {
				if strings.Contains(body, bad) {
					t.Errorf("%s runs %s: the package creates no user", s, bad)
				}
			}
		}
		if !strings.Contains(readFile(t, filepath.Join(ctrl, "postinst")), "systemctl daemon-reload") {
			t.Error("postinst does not run systemctl daemon-reload")
		}
	})

	t.Run("postinst applies the node's sysctls (in a scratch network namespace)", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root: unshare of a network and mount namespace")
		}
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("unshare (util-linux) is not installed")
		}
		if !exists("/usr/lib/systemd/systemd-sysctl") && !exists("/lib/systemd/systemd-sysctl") {
			t.Skip("systemd-sysctl is not installed")
		}
		// Net sysctls belong to the network namespace, and the bind mount
		// to the private mount namespace: the host keeps its own values.
		var keys []string
		for k, s := range sysctls {
			if !s.optional {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		script := `set -e
mount --bind "$1/usr/lib/sysctl.d" /usr/lib/sysctl.d
"$2" configure >/dev/null
shift 2
for k in "$@"; do printf '%s=%s\n' "$k" "$(sysctl -n "$k")"; done`
		args := append([]string{"--net", "--mount", "sh", "-c", script, "sh", fsRoot, filepath.Join(ctrl, "postinst")}, keys...)
		got := strings.Split(strings.TrimSpace(run(t, "", "unshare", args...)), "\n")
		if len(got) != len(keys) {
			t.Fatalf("read %d sysctls after postinst, want %d: %q", len(got), len(keys), got)
		}
		for _, line := range got {
			k, v, _ := strings.Cut(line, "=")
			if want := sysctls[k].value; strings.Join(strings.Fields(v), " ") != want {
				t.Errorf("after postinst: %s = %q, want %q", k, v, want)
			}
		}
	})
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return string(out)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// binaryVersion is the version `portcullis version` prints
// ("portcullis VERSION (commit ...)").
func binaryVersion(t *testing.T, bin string) string {
	t.Helper()
	f := strings.Fields(run(t, "", bin, "version"))
	if len(f) < 2 || f[0] != "portcullis" {
		t.Fatalf("portcullis version printed %q", f)
	}
	return f[1]
}

// controlFields reads the " Field: value" lines of dpkg-deb --info; a
// continuation line (Description) is not a field.
func controlFields(info string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(info))
	re := regexp.MustCompile(`^ ([A-Z][A-Za-z-]+): (.*)$`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]] = m[2]
		}
	}
	return out
}

// unitKeys maps each key of a unit file to its values in order (comments
// and section headers skipped).
func unitKeys(unit string) map[string][]string {
	out := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[strings.TrimSpace(k)] = append(out[strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return out
}

type sysctl struct {
	value    string
	optional bool // a leading '-': systemd-sysctl skips it when missing
}

func sysctlFile(t *testing.T, body string) map[string]sysctl {
	t.Helper()
	out := map[string]sysctl{}
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("sysctl line %q has no '='", line)
		}
		k = strings.TrimSpace(k)
		s := sysctl{value: strings.Join(strings.Fields(v), " ")}
		if strings.HasPrefix(k, "-") {
			k, s.optional = k[1:], true
		}
		out[k] = s
	}
	return out
}

// usesSDNotify reports whether the daemon's Go code speaks the sd_notify
// protocol; the unit's Type= must follow (notify if so, simple if not).
func usesSDNotify(t *testing.T, root string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("NOTIFY_SOCKET")) || bytes.Contains(b, []byte("SdNotify")) {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
