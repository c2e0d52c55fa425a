package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// backend is a store the CLI reaches by flags, and the same store opened directly for the test,
// with keys from the store's root: the rootPath is the first element of every log key.
type backend struct {
	args  []string // --storage and its S3 flags
	store objstore.Store
	root  string // Milvus rootPath the CLI writes under
}

func localBackend(t *testing.T) backend {
	dir := t.TempDir()
	s, err := objstore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return backend{args: []string{"--storage", dir}, store: s, root: "files"}
}

// minioBackend points the CLI at s3://bucket/<unique prefix>: the URL's path is the rootPath.
func minioBackend(t *testing.T) backend {
	bucket, opts := objstoretest.S3Config(t)
	prefix := objstoretest.UniquePrefix(t)
	s, err := objstore.NewS3(context.Background(), bucket, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		objs, _ := s.List(context.Background(), prefix+"/")
		for _, o := range objs {
			s.Delete(context.Background(), o.Key)
		}
	})
	return backend{args: []string{"--storage", "s3://" + bucket + "/" + prefix, "--endpoint", opts.Endpoint,
		"--access-key", opts.AccessKey, "--secret-key", opts.SecretKey}, store: s, root: prefix}
}

func runBackends(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("local", func(t *testing.T) { fn(t, localBackend(t)) })
	t.Run("minio", func(t *testing.T) { fn(t, minioBackend(t)) })
}

// snapshotStore maps every key under prefix to its bytes.
func snapshotStore(t *testing.T, s objstore.Store, prefix string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	objs, err := s.List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, o := range objs {
		rc, err := s.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		m[o.Key], _ = io.ReadAll(rc)
		rc.Close()
	}
	return m
}

// TestSweepCommand: after a real run whose result is kept, objects faked under the plan's output
// ranges (a crashed retry's outputs, an L0-style deltalog of an input segment) are listed exactly
// by sweep and removed exactly by sweep --delete; the inputs and the result's outputs stay
// byte-identical. On a local directory and on MinIO.
func TestSweepCommand(t *testing.T) {
	runBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		plans := t.TempDir()
		gen := append([]string{"gen", "--plans", plans, "--segments", "2", "--rows", "300", "--dim", "4"}, b.args...)
		if r := runCLI(t, gen...); r.code != 0 {
			t.Fatalf("gen: exit %d %s", r.code, r.stderr)
		}
		planFile := filepath.Join(plans, "mix-plan.json")
		inputs := snapshotStore(t, b.store, b.root+"/")
		r := runCLI(t, append([]string{"--plugin", mixWasm, "--plan", planFile, "--progress", "none"}, b.args...)...)
		if r.code != 0 {
			t.Fatalf("run: exit %d %s", r.code, r.stderr)
		}
		resultFile := filepath.Join(t.TempDir(), "result.json")
		os.WriteFile(resultFile, []byte(r.stdout), 0o644)

		planBytes, _ := os.ReadFile(planFile)
		var plan datapb.CompactionPlan
		if err := protojson.Unmarshal(planBytes, &plan); err != nil {
			t.Fatal(err)
		}
		in := plan.GetSegmentBinlogs()[0]
		coll, part := in.GetCollectionID(), in.GetPartitionID()
		seg, logs := plan.GetPreAllocatedSegmentIDs(), plan.GetPreAllocatedLogIDs()
		orphans := []string{
			milvuspath.InsertLog(b.root, coll, part, seg.GetEnd()-1, 100, logs.GetEnd()-1),
			milvuspath.StatsLog(b.root, coll, part, seg.GetEnd()-1, 100, logs.GetEnd()-2),
			milvuspath.DeltaLog(b.root, coll, part, in.GetSegmentID(), logs.GetEnd()-3),
		}
		slices.Sort(orphans)
		for _, k := range orphans {
			if err := b.store.Put(ctx, k, strings.NewReader("partial"), 7); err != nil {
				t.Fatal(err)
			}
		}
		before := snapshotStore(t, b.store, b.root+"/")

		sweep := append([]string{"sweep", "--plan", planFile, "--result", resultFile}, b.args...)
		r = runCLI(t, sweep...)
		got := strings.Fields(r.stdout)
		if r.code != 0 || !slices.Equal(got, orphans) || !strings.Contains(r.stderr, "3 orphan object(s) found, 21 bytes") {
			t.Fatalf("sweep: exit %d, stdout %q, stderr %q; want the orphans %q", r.code, got, r.stderr, orphans)
		}
		r = runCLI(t, append(sweep, "--json")...)
		var rep struct {
			PlanID  int64 `json:"plan_id"`
			Deleted bool
			Objects []struct{ Key string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.PlanID != plan.GetPlanID() || rep.Deleted || len(rep.Objects) != 3 {
			t.Fatalf("sweep --json: exit %d, %v: %s", r.code, err, r.stdout)
		}
		if d := diff(before, snapshotStore(t, b.store, b.root+"/")); d != "" {
			t.Fatalf("sweep without --delete changed the store: %s", d)
		}

		// Without the result, its outputs are orphans too.
		r = runCLI(t, append([]string{"sweep", "--plan", planFile}, b.args...)...)
		if n := len(strings.Fields(r.stdout)); r.code != 0 || n <= len(orphans) {
			t.Fatalf("sweep without the result: exit %d, %d keys; want the result's outputs as well", r.code, n)
		}

		r = runCLI(t, append(sweep, "--delete")...)
		if r.code != 0 || !slices.Equal(strings.Fields(r.stdout), orphans) || !strings.Contains(r.stderr, "3 orphan object(s) deleted") {
			t.Fatalf("sweep --delete: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		after := snapshotStore(t, b.store, b.root+"/")
		for _, k := range orphans {
			delete(before, k)
		}
		if d := diff(before, after); d != "" {
			t.Fatalf("sweep --delete removed more than the orphans: %s", d)
		}
		for k, v := range inputs {
			if !bytes.Equal(after[k], v) {
				t.Fatalf("input %s changed or removed", k)
			}
		}
	})
}

// diff names the first key added, removed or changed from a to b, or "".
func diff(a, b map[string][]byte) string {
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return "removed or changed " + k
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			return "added " + k
		}
	}
	return ""
}

// TestSweepCommandErrors: usage, a missing plan and a result of another plan.
func TestSweepCommandErrors(t *testing.T) {
	store, plans, _ := genDemo(t)
	dir := t.TempDir()
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{"planID": "1", "state": "completed"}`), 0o644)
	plan := filepath.Join(plans, "mix-plan.json")
	for _, c := range []struct {
		args    []string
		code    int
		message string
	}{
		{[]string{"sweep", "--storage", store}, exitUsage, "--plan"},
		{[]string{"sweep", "--storage", store, "--plan", filepath.Join(dir, "nope.json")}, exitNotFound, "nope.json"},
		{[]string{"sweep", "--storage", store, "--plan", plan, "--result", other}, exitBadInput, "is for plan 1"},
	} {
		r := runCLI(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.message) {
			t.Errorf("%v: exit %d, stderr %q; want %d mentioning %q", c.args, r.code, r.stderr, c.code, c.message)
		}
	}
}

// TestStorageURLRootPath: an s3:// URL's path is Milvus's rootPath, not a prefix above the default
// "files" (s3://b/p writes p/insert_log/...); a --root-path equal to it is not applied twice; a
// different --root-path goes beneath it. A directory is the store's root with "files" beneath.
func TestStorageURLRootPath(t *testing.T) {
	genAt := func(t *testing.T, args ...string) {
		t.Helper()
		r := runCLI(t, append([]string{"gen", "--plans", t.TempDir(), "--segments", "1", "--rows", "50", "--dim", "4"}, args...)...)
		if r.code != 0 {
			t.Fatalf("gen %v: exit %d %s", args, r.code, r.stderr)
		}
	}
	hasLayout := func(t *testing.T, s objstore.Store, prefix string) {
		t.Helper()
		objs, err := s.List(context.Background(), prefix)
		if err != nil || len(objs) == 0 {
			t.Fatalf("nothing under %q (%v)", prefix, err)
		}
	}
	t.Run("local", func(t *testing.T) {
		for _, form := range []string{"", "local://"} {
			b := localBackend(t)
			genAt(t, "--storage", form+b.args[1])
			hasLayout(t, b.store, "files/insert_log/")
		}
	})
	t.Run("minio", func(t *testing.T) {
		b := minioBackend(t)
		genAt(t, b.args...)
		hasLayout(t, b.store, b.root+"/insert_log/")
		genAt(t, append(b.args, "--root-path", b.root, "--seed", "2")...)
		if objs, _ := b.store.List(context.Background(), b.root+"/"+b.root+"/"); len(objs) > 0 {
			t.Fatalf("--root-path equal to the URL's path was applied twice: %s", objs[0].Key)
		}
		genAt(t, append(b.args, "--root-path", "files")...)
		hasLayout(t, b.store, b.root+"/files/insert_log/")
	})
}
