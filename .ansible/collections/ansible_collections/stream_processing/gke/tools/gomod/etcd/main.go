// Command etcd is the upstream etcd server (same entry point as go.etcd.io/etcd/server/v3's own main).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
