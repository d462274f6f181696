package runtimeapi_test

import "syscall"

// syscallZero probes whether a process still exists (signal 0 checks without delivering).
var syscallZero = syscall.Signal(0)
