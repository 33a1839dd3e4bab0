package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkGeoIP: geoipupdate writes the file the config names, again and again (a sidecar
// or a CronJob, not only an init container or a Job): the proxy notices a new file by
// itself, so nothing needs to signal it (and no pod shares its process namespace, which
// checkWorkloads holds every pod to). With o.live, the sidecar's script is run and must
// stop at once on SIGTERM.
// runsGeoipupdate finds geoipupdate run as a command (with its options, or alone), not
// named in a message.
var runsGeoipupdate = regexp.MustCompile(`(?m)(^|[\s;&|(])geoipupdate(\s+-|\s*$|\s*[;&|)])`)

func (p *pod) checkGeoIP(t testing.TB, o checkOpts) {
	t.Helper()
	where := fmt.Sprintf("%s: %s", p.m.label, p.dep)
	dir, file := path.Split(p.geoPath)
	edition := strings.TrimSuffix(file, ".mmdb")
	_, gm := p.fs.host(p.geoPath)
	if gm == nil {
		return // reported by loadConfig
	}
	for _, vm := range p.c.VolumeMounts {
		if vm.Name == gm.volume.Name && !vm.ReadOnly {
			t.Errorf("%s: consentgate mounts the GeoIP volume %q read-write", where, vm.Name)
		}
	}
	// Writers: containers of this pod or of a Job/CronJob that run geoipupdate into the
	// same volume (a PVC: the same claim).
	// Each is a one-off download (an init container, a Job) or keeps the file current
	// (a container of the pod, which runs as long as the proxy does, or a CronJob).
	type writer struct {
		where   string
		c       *container
		spec    *podSpec
		keeps   bool
		sidecar bool
	}
	var writers []writer
	for i := range p.spec.InitContainers {
		c := &p.spec.InitContainers[i]
		writers = append(writers, writer{where: "pod init container " + c.Name, c: c, spec: p.spec})
	}
	for i := range p.spec.Containers {
		c := &p.spec.Containers[i]
		writers = append(writers, writer{where: "pod container " + c.Name, c: c, spec: p.spec, keeps: true, sidecar: true})
	}
	for _, jo := range p.m.all("CronJob") {
		var cj cronJob
		jo.as(t, &cj)
		spec := cj.Spec.JobTemplate.Spec.Template.Spec
		for _, c := range spec.allContainers() {
			writers = append(writers, writer{where: jo.String() + " container " + c.Name, c: c, spec: &spec, keeps: true})
		}
	}
	for _, jo := range p.m.all("Job") {
		var j job
		jo.as(t, &j)
		spec := j.Spec.Template.Spec
		for _, c := range spec.allContainers() {
			writers = append(writers, writer{where: jo.String() + " container " + c.Name, c: c, spec: &spec})
		}
	}
	sameVolume := func(spec *podSpec, name string) bool {
		v := spec.volume(name)
		if v == nil {
			return false
		}
		if spec == p.spec {
			return name == gm.volume.Name
		}
		return v.PersistentVolumeClaim != nil && gm.volume.PersistentVolumeClaim != nil &&
			v.PersistentVolumeClaim.ClaimName == gm.volume.PersistentVolumeClaim.ClaimName
	}
	found, kept := false, false
	for _, w := range writers {
		if !runsGeoipupdate.MatchString(w.c.script()) {
			continue
		}
		env := map[string]string{}
		for _, e := range w.c.Env {
			env[e.Name] = e.Value
		}
		if env["GEOIPUPDATE_DB_DIR"] == "" {
			continue // not told where to write
		}
		if strings.TrimSuffix(env["GEOIPUPDATE_DB_DIR"], "/")+"/" != dir {
			t.Errorf("%s: %s writes to %s, the config reads %s", where, w.where, env["GEOIPUPDATE_DB_DIR"], p.geoPath)
			continue
		}
		if !slices.Contains(strings.Fields(env["GEOIPUPDATE_EDITION_IDS"]), edition) {
			t.Errorf("%s: %s downloads %q, the config reads %s", where, w.where, env["GEOIPUPDATE_EDITION_IDS"], file)
			continue
		}
		mounted := false
		for _, vm := range w.c.VolumeMounts {
			if vm.MountPath+"/" == dir && sameVolume(w.spec, vm.Name) && !vm.ReadOnly {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("%s: %s does not write the volume consentgate reads %s from", where, w.where, p.geoPath)
			continue
		}
		found = true
		kept = kept || w.keeps
		if w.sidecar && o.live {
			checkUpdaterStops(t, where+": "+w.where, w.c)
		}
	}
	// A claim the manifests make must be mountable on every node a replica or the
	// CronJob lands on.
	if gm.volume.PersistentVolumeClaim != nil {
		if co := p.m.get("PersistentVolumeClaim", gm.volume.PersistentVolumeClaim.ClaimName); co != nil {
			var c pvc
			co.as(t, &c)
			if !slices.Contains(c.Spec.AccessModes, "ReadWriteMany") {
				t.Errorf("%s: %s is %v: the pods on other nodes could not mount it", where, co, c.Spec.AccessModes)
			}
		}
	}
	if !found && gm.volume.PersistentVolumeClaim != nil && o.externalGeoIP {
		found, kept = true, true // a claim something outside the manifests keeps up to date
	}
	switch {
	case !found:
		t.Errorf("%s: nothing runs geoipupdate into %s", where, p.geoPath)
	case !kept:
		t.Errorf("%s: geoipupdate downloads %s only once (an init container or a Job): nothing keeps it up to date", where, p.geoPath)
	}
}

// checkUpdaterStops runs the updater sidecar's command, with a geoipupdate that only says
// it ran, and sends it SIGTERM while it waits for the next update. Its shell is PID 1 in
// the container, which the kernel spares every signal it does not handle: without a trap
// the pod would wait out its grace period at every stop, and with a trap but a sleep in
// the foreground the shell would run it to the end first. So it must exit 0 (its trap),
// at once.
func checkUpdaterStops(t testing.TB, where string, c *container) {
	t.Helper()
	if len(c.Command) == 0 {
		t.Errorf("%s: no command: the image's entrypoint is not what the tests can run", where)
		return
	}
	bin := t.TempDir()
	fake := "#!/bin/sh\necho \"geoipupdate $*\"\n"
	if err := os.WriteFile(filepath.Join(bin, "geoipupdate"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.Command[0], append(c.Command[1:], c.Args...)...)
	cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its sleep is killed with it
	// A file, not a pipe: the orphaned sleep would hold a pipe open, and Wait with it.
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	output := func() string {
		b, _ := os.ReadFile(out.Name())
		return string(b)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	pid := cmd.Process.Pid
	defer syscall.Kill(-pid, syscall.SIGKILL)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The script is waiting for its next update once it has a child (its sleep): its
	// trap, set before, is in place.
	children := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	deadline := time.Now().Add(10 * time.Second) // a hang guard, not a timing
	for {
		b, err := os.ReadFile(children)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			break
		}
		select {
		case err := <-exited:
			t.Errorf("%s: the script exited before its first wait: %v\n%s", where, err, output())
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the script started nothing within 10s:\n%s", where, output())
		}
	}
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("%s: on SIGTERM the script ended with %v, want exit 0 from its trap (as PID 1 it would ignore the signal):\n%s", where, err, output())
		}
		t.Logf("%s: the updater stopped %v after SIGTERM", where, time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Errorf("%s: the script still ran 10s after SIGTERM: the pod would wait out its grace period at every stop", where)
	}
}
