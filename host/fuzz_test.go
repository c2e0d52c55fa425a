package host

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzAdmit feeds arbitrary bytes through admission and, when admitted,
// through a task: every outcome must be success or a typed error, never a
// host panic.
func FuzzAdmit(f *testing.F) {
	f.Add(tmModule(tmOpts{}))
	f.Add(tmModule(tmOpts{batchBody: tmBadPtrBody}))
	f.Add(tmModule(tmOpts{finishBody: tmEmitShortBody}))
	f.Add(tmModule(tmOpts{extraImport: [2]string{"env", "x"}}))
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	rt, err := NewRuntime(context.Background(), Config{MaxModuleBytes: 1 << 20, MaxGrant: 4 << 20, CacheDir: testCacheDir})
	if err != nil {
		f.Fatal(err)
	}
	defer rt.Close(context.Background())
	f.Fuzz(func(t *testing.T, wasm []byte) {
		p, err := rt.Admit(context.Background(), "mix@1.0.0", wasm)
		if err != nil {
			var ae *AdmissionError
			if !errors.As(err, &ae) {
				t.Fatalf("untyped admission error %T: %v", err, err)
			}
			return
		}
		defer p.Release()
		_, err = runTask(context.Background(), rt, p, InstanceConfig{Grant: 4 << 20, Deadline: time.Now().Add(time.Second)})
		var ae *AdmissionError
		var te *TaskError
		if err != nil && !errors.As(err, &ae) && !errors.As(err, &te) {
			t.Fatalf("untyped task error %T: %v", err, err)
		}
	})
}
