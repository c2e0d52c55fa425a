// Command mixmanifest is the bundled mix strategy with manifest fields set at build time, so the
// CLI tests can build plugins that pass admission but declare what no task can give them:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared \
//	    -ldflags "-X main.fields=pk,ts,7 -X main.minMemory=8589934592" -o odd.wasm ./cmd/compact-host/testdata/mixmanifest
package main

import (
	"strconv"
	"strings"

	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

// fields (comma-separated selectors) and minMemory (bytes), when set, replace the mix manifest's.
var fields, minMemory string

type variant struct{ *mixstrategy.Strategy }

func (v variant) Manifest() sdk.Manifest {
	m := v.Strategy.Manifest()
	if fields != "" {
		m.Fields = strings.Split(fields, ",")
	}
	if n, err := strconv.ParseUint(minMemory, 10, 64); err == nil {
		m.MinMemory = n
	}
	return m
}

func init() { sdk.Register(variant{mixstrategy.New()}) }

func main() {}
