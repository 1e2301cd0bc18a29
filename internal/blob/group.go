package blob

import "sync"

// Group runs a commit (a sync, a write that covers everything so far)
// for every caller that needs one, sharing each run among the callers
// that arrived before it started (group commit). The zero Group is ready.
type Group struct {
	mu                sync.Mutex
	cond              *sync.Cond
	started, finished uint64
	running           bool
	failedRound       uint64
	err               error
}

// Run returns once a run of commit that started after the call has
// finished, with that run's error.
func (g *Group) Run(commit func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	want := g.started + 1
	for g.finished < want {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		round := g.started
		g.mu.Unlock()
		err := commit()
		g.mu.Lock()
		g.running, g.finished = false, round
		if err != nil {
			g.failedRound, g.err = round, err
		}
		g.cond.Broadcast()
	}
	if g.failedRound == g.finished && g.err != nil {
		return g.err
	}
	return nil
}
