package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// workerProc is a `pathupdate worker` the harness runs as a child process.
type workerProc struct {
	cmd    *exec.Cmd
	exited chan error
	stderr tailBuffer
	done   bool // exited has been received from
}

// startWorkerProc starts bin as `pathupdate worker` with args in dir.
func startWorkerProc(ctx context.Context, bin, dir string, args ...string) (*workerProc, error) {
	return startProc(ctx, bin, dir, nil, append([]string{"worker"}, args...)...)
}

// startProc starts bin with args in dir, its environment the harness's
// plus env (KEY=value).
func startProc(ctx context.Context, bin, dir string, env []string, args ...string) (*workerProc, error) {
	p := &workerProc{exited: make(chan error, 1)}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Dir = dir
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	return p, nil
}

func (p *workerProc) pid() int { return p.cmd.Process.Pid }

// early returns an error when the worker has exited on its own.
func (p *workerProc) early() error {
	select {
	case err := <-p.exited:
		p.done = true
		return fmt.Errorf("worker exited early (%v): %s", err, p.stderr.String())
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to 30 s for a clean exit.
func (p *workerProc) stop() error {
	if p.done {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.done = true
		if err != nil {
			return fmt.Errorf("worker did not exit cleanly on SIGTERM (%v): %s", err, p.stderr.String())
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("worker still running 30s after SIGTERM")
	}
}

// kill ends the worker if it still runs (deferred after start).
func (p *workerProc) kill() {
	if p.done {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.done = true
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// procCPU returns the CPU time (user + system) pid has used, from
// /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its
	// closing parenthesis start at field 3 (state).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, v := range f[11:13] { // utime (field 14), stime (field 15)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
