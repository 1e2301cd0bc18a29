package push

import (
	"container/heap"
	"context"
	"sync"
)

// narQueue holds the NARs waiting for upload, shallowest first (a path's
// depth is one more than its deepest reference's), then in arrival order.
type narQueue struct {
	mu      sync.Mutex
	h       nodeHeap
	waiting chan struct{} // closed when a node arrives
}

func newNarQueue() *narQueue { return &narQueue{waiting: make(chan struct{})} }

func (q *narQueue) push(n *node) {
	q.mu.Lock()
	defer q.mu.Unlock()
	heap.Push(&q.h, n)
	close(q.waiting)
	q.waiting = make(chan struct{})
}

// pop returns the first node, waiting for one; nil once ctx ends.
func (q *narQueue) pop(ctx context.Context) *node {
	for {
		q.mu.Lock()
		if q.h.Len() > 0 {
			n := heap.Pop(&q.h).(*node)
			q.mu.Unlock()
			return n
		}
		ch := q.waiting
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		}
	}
}

// takeAll empties the queue.
func (q *narQueue) takeAll() []*node {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := []*node(q.h)
	q.h = nil
	return out
}

type nodeHeap []*node

func (h nodeHeap) Len() int { return len(h) }
func (h nodeHeap) Less(i, j int) bool {
	if h[i].depth != h[j].depth {
		return h[i].depth < h[j].depth
	}
	return h[i].seq < h[j].seq
}
func (h nodeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *nodeHeap) Push(x any)   { *h = append(*h, x.(*node)) }
func (h *nodeHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	*h = old[:len(old)-1]
	return n
}
