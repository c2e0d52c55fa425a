// Command wasm is the evenpk test strategy as a wasm reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o evenpk.wasm ./abi/sdk/internal/evenpk/wasm
package main

import (
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/abi/sdk/internal/evenpk"
)

func init() { sdk.Register(evenpk.New()) }

func main() {}
