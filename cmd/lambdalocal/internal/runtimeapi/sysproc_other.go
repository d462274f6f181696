//go:build !linux

package runtimeapi

import "syscall"

// sysProcAttr: only Linux has a parent-death signal; elsewhere Close must be called.
func sysProcAttr() *syscall.SysProcAttr { return nil }
