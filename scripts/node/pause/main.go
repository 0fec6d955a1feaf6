// pause is the pod sandbox's init process for the node tier: it holds the pod's
// namespaces, reaps children re-parented to it and exits on SIGINT/SIGTERM. A registry
// pause image cannot be pulled here, so the tier builds its own (an image needs an
// entrypoint: an empty one cannot be started by runc).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
