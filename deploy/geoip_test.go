package deploy

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
)

// checkGeoIP: geoipupdate writes the file the config names, and something tells the
// proxy when it changed: a container of the pod that sends it SIGHUP.
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
	type writer struct {
		where string
		c     *container
		spec  *podSpec
	}
	var writers []writer
	for _, c := range p.spec.allContainers() {
		writers = append(writers, writer{"pod container " + c.Name, c, p.spec})
	}
	for _, jo := range p.m.all("CronJob") {
		var cj cronJob
		jo.as(t, &cj)
		spec := cj.Spec.JobTemplate.Spec.Template.Spec
		for _, c := range spec.allContainers() {
			writers = append(writers, writer{jo.String() + " container " + c.Name, c, &spec})
		}
	}
	for _, jo := range p.m.all("Job") {
		var j job
		jo.as(t, &j)
		spec := j.Spec.Template.Spec
		for _, c := range spec.allContainers() {
			writers = append(writers, writer{jo.String() + " container " + c.Name, c, &spec})
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
	found := false
	for _, w := range writers {
		if !strings.Contains(w.c.script(), "geoipupdate") {
			continue
		}
		env := map[string]string{}
		for _, e := range w.c.Env {
			env[e.Name] = e.Value
		}
		if env["GEOIPUPDATE_DB_DIR"] == "" {
			continue // the reloader of a CronJob deployment: it only reads
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
		found = true // a claim something outside the manifests keeps up to date
	}
	if !found {
		t.Errorf("%s: nothing runs geoipupdate into %s", where, p.geoPath)
	}
	// The reloader: a container of the pod that sends consentgate SIGHUP, which needs one
	// process namespace and the same user (no capability is needed to signal one's own).
	reloader := false
	uid := effectiveUser(p.spec, p.c)
	for _, c := range p.spec.Containers {
		s := c.script()
		if !strings.Contains(s, "kill -HUP") || !strings.Contains(s, "pidof consentgate") {
			continue
		}
		reloader = true
		if !p.spec.ShareProcessNamespace {
			t.Errorf("%s: container %s signals consentgate, but the pod does not share its process namespace", where, c.Name)
		}
		if u := effectiveUser(p.spec, &c); u == nil || uid == nil || *u != *uid {
			t.Errorf("%s: container %s runs as user %v and consentgate as %v: it could not signal it", where, c.Name, derefUID(u), derefUID(uid))
		}
		if !strings.Contains(s, file) {
			t.Errorf("%s: container %s does not watch %s", where, c.Name, file)
		}
	}
	if !reloader {
		t.Errorf("%s: no container sends consentgate SIGHUP when %s changes: the proxy would keep the database it started with", where, p.geoPath)
	}
}

func effectiveUser(spec *podSpec, c *container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return c.SecurityContext.RunAsUser
	}
	if spec.SecurityContext != nil {
		return spec.SecurityContext.RunAsUser
	}
	return nil
}

func derefUID(u *int64) any {
	if u == nil {
		return "the image's"
	}
	return *u
}
