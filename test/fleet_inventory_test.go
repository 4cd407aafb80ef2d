package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/inventory"
)

// inventoryOf is a replica's GET /admin/inventory.
func (r *replica) inventoryOf() *inventory.Report {
	r.t.Helper()
	code, doc := r.admin("GET", "/admin/inventory", "")
	b, _ := json.Marshal(doc)
	var rep inventory.Report
	if code != 200 || json.Unmarshal(b, &rep) != nil {
		r.t.Fatalf("GET /admin/inventory on %s = %d %s", r.name, code, b)
	}
	return &rep
}

// legacyOf is an endpoint's legacy requests in a report (-1: absent).
func legacyOf(rep *inventory.Report, name string) int64 {
	for _, e := range rep.Endpoints {
		if e.Endpoint == name {
			return e.Legacy
		}
	}
	return -1
}

// TestFleetInventoryIsMerged: with a shared store each replica's
// inventory report is the fleet's (the replicas' snapshots merged); a
// replica restarted under a new name with its state file takes its old
// snapshot's place in the pool, so nothing counts twice.
func TestFleetInventoryIsMerged(t *testing.T) {
	rs := testutil.StartRedis(t)
	routes := fleetRoutes(t, "inventory: {save_every: 100ms}\n")
	fleet := startFleet(t, routes, rs.URL(), 2)
	a, b := fleet[0], fleet[1]
	for i := range 5 {
		a.body(fmt.Sprintf("/course.php?id=%d", i))
	}
	for i := range 7 {
		b.body(fmt.Sprintf("/course.php?id=%d", 100+i))
	}
	b.body("/only-b.php")
	for _, r := range fleet {
		testutil.Eventually(t, 10*time.Second, func() bool {
			rep := r.inventoryOf()
			return legacyOf(rep, "GET /course.php?id={id}") == 12 && legacyOf(rep, "GET /only-b.php") == 1
		}, func() string { return fmt.Sprintf("%s reports %+v", r.name, r.inventoryOf().Endpoints) })
	}

	// B restarts in its directory: a new process, so a new replica name;
	// it restores its state file and adopts its old snapshot.
	b.stop()
	b2 := startReplica(t, "B2", routes, rs.URL(), b.dir)
	if rep := b2.inventoryOf(); legacyOf(rep, "GET /only-b.php") != 1 {
		t.Fatalf("B2 did not restore B's inventory: %+v", rep.Endpoints)
	}
	b2.body("/course.php?id=999")
	testutil.Eventually(t, 10*time.Second, func() bool {
		return legacyOf(a.inventoryOf(), "GET /course.php?id={id}") == 13
	}, func() string { return fmt.Sprintf("A reports %+v", a.inventoryOf().Endpoints) })
	// And it stays there (B's old snapshot would make it 20).
	time.Sleep(500 * time.Millisecond)
	if n := legacyOf(a.inventoryOf(), "GET /course.php?id={id}"); n != 13 {
		t.Fatalf("A counts %d course.php requests after B's restart, want 13", n)
	}
	if n := legacyOf(b2.inventoryOf(), "GET /course.php?id={id}"); n != 13 {
		t.Fatalf("B2 counts %d course.php requests, want 13", n)
	}
}

// TestFleetInventorySurvivesStoreOutages: the fleet's merged inventory
// stays right through the store's failures. Redis loses its data: every
// replica saves its snapshot again, although it saw no new request. A
// replica restarted (a new name, its state file) while Redis does not
// answer: its earlier name's snapshot leaves the pool at its first save
// once Redis answers again, so nothing counts twice.
func TestFleetInventorySurvivesStoreOutages(t *testing.T) {
	rs := testutil.StartRedis(t)
	routes := fleetRoutes(t, "inventory: {save_every: 100ms}\n")
	fleet := startFleet(t, routes, rs.URL("resync=500ms"), 2)
	a, b := fleet[0], fleet[1]
	for i := range 5 {
		a.body(fmt.Sprintf("/course.php?id=%d", i))
	}
	for i := range 7 {
		b.body(fmt.Sprintf("/course.php?id=%d", 100+i))
	}
	b.body("/only-b.php")
	merged := func(r *replica, course, onlyB int64) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, func() bool {
			rep := r.inventoryOf()
			return legacyOf(rep, "GET /course.php?id={id}") == course && legacyOf(rep, "GET /only-b.php") == onlyB
		}, func() string { return fmt.Sprintf("%s reports %+v", r.name, r.inventoryOf().Endpoints) })
	}
	merged(a, 12, 1)

	// Redis loses its data; no request reaches B after it.
	if _, err := rs.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	merged(a, 12, 1)

	// B restarts while Redis is stalled.
	rs.Pause()
	b.stop()
	b2 := startReplica(t, "B2", routes, rs.URL("resync=500ms"), b.dir)
	if !strings.Contains(b2.log.String(), "the previous name's snapshot is still in the fleet store") {
		t.Fatalf("B2 does not say it could not replace B's snapshot:\n%s", b2.log.String())
	}
	rs.Resume()
	b2.body("/course.php?id=999")
	merged(a, 13, 1)
	merged(b2, 13, 1)
	// And it stays there (B's old snapshot would make it 20).
	time.Sleep(500 * time.Millisecond)
	for _, r := range []*replica{a, b2} {
		if n := legacyOf(r.inventoryOf(), "GET /course.php?id={id}"); n != 13 {
			t.Fatalf("%s counts %d course.php requests after B's restart, want 13", r.name, n)
		}
	}
}
