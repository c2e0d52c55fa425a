// Command mixnext is the bundled mix strategy under another version number,
// so the serve test can hot-swap a newer plugin in:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags "-X main.version=1.1.0" \
//	    -o mix@1.1.0.wasm ./cmd/compact-host/testdata/mixnext
//
// Built with -X main.broken=yes it fails every batch, as a bad release
// would, for the rollback test.
package main

import (
	"errors"

	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

// version is the manifest version; it must match the file name's.
var version = "1.1.0"

// broken, when set, makes every batch fail.
var broken = ""

type next struct{ *mixstrategy.Strategy }

// Manifest reports the mix manifest under this build's version.
func (n next) Manifest() sdk.Manifest {
	m := n.Strategy.Manifest()
	m.Version = version
	return m
}

// Batch fails in a broken build, else decides as mix does.
func (n next) Batch(b *sdk.Batch, out sdk.Emitter) error {
	if broken != "" {
		return errors.New("mixnext " + version + " is a broken build")
	}
	return n.Strategy.Batch(b, out)
}

func init() { sdk.Register(next{mixstrategy.New()}) }

func main() {}
