// Command etcd is the etcd server the tests start, built from the pinned
// go.etcd.io/etcd/server/v3 module. etcd's own main module cannot be
// "go install"ed (its go.mod has replace directives), so this module wraps
// the server's etcdmain package; scripts/test.sh installs it into GOBIN.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
