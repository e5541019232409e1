package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/sync/central"
	"github.com/storeagent/storeagent/sync/wire"
)

const (
	// defaultCustomers is "a few hundred": enough to be a store's cache,
	// small enough that the snapshot takes a blink.
	defaultCustomers = 300
	// stepTimeout bounds every wait of every step; the whole demo takes
	// a few seconds.
	stepTimeout = 15 * time.Second
	// loyalty is the purpose the till and the kiosk ask for.
	loyalty = central.PurposeLoyalty
)

// Events the central must have received by the end of the day.
var wantEvents = []string{"Order Completed", "Consent Updated", "Rights Request Applied", "(identify)"}

// options configure run.
type options struct {
	Logs      io.Writer // the parts' logs; io.Discard for none
	Customers int       // synthetic customers of the central; 0 means defaultCustomers
}

// day is what run did, for its test.
type day struct {
	// Customers generates the central's synthetic customers, clear
	// identifiers included: the test checks none of them was printed.
	Customers central.Customers
	// Steps counts the steps that passed, 0 (opening) to 5.
	Steps int
	// Report is what the central recorded of the agent.
	Report central.AgentReport
	// Received counts the central's recorded events by name.
	Received map[string]int
}

// run plays the store day, narrating to out, and returns what it did. The
// first step whose outcome is not the expected one ends it with an error
// naming the step. Everything it starts is stopped, and its temporary
// directory removed, before it returns.
func run(ctx context.Context, out io.Writer, opts options) (*day, error) {
	if opts.Customers <= 0 {
		opts.Customers = defaultCustomers
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	dir, err := os.MkdirTemp("", "storedemo-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(opts.Logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	w, err := startWorld(ctx, dir, opts.Customers, log)
	if err != nil {
		return nil, fmt.Errorf("start the demo: %w", err)
	}
	p := &play{w: w, out: out, day: &day{Customers: w.central.Customers()}}
	err = p.all(ctx)
	if serr := w.stop(); serr != nil && err == nil {
		err = fmt.Errorf("shut down: %w", serr)
	}
	if err != nil {
		return p.day, err
	}
	return p.day, p.report(w.centralDir)
}

// play is one run of the day: the world and the customers it involves.
type play struct {
	w   *world
	out io.Writer
	day *day

	alice, bob central.Customer // the kiosk's customer and the erased one; never printed
	userID     string           // alice's id, as the till answered it
}

func (p *play) say(format string, args ...any) {
	fmt.Fprintf(p.out, format+"\n", args...)
}

// card masks a loyalty number as storectl does: the last two digits.
func card(number string) string {
	return ident.ID{Kind: ident.Loyalty, Value: number}.Mask()
}

// ref is a customer's short keyed ref, as storectl shows one.
func (p *play) ref(userID string) string { return "#" + p.w.masker.Ref(userID) }

func (p *play) all(ctx context.Context) error {
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"opening", p.opening},
		{"scan", p.scan},
		{"offline purchase", p.purchase},
		{"link back", p.linkBack},
		{"consent withdrawal", p.withdraw},
		{"central erasure", p.erase},
	}
	p.say("storedemo: one store day, every part in this process (state in a temporary directory, removed at the end)")
	p.say("   central CDP (cdpsim) with %d synthetic customers · MQTT broker %s · agent %s/%s",
		p.day.Customers.N, p.w.broker.addr, storeID, agentID)
	p.say("   till scanner on %s (simulated) · POS and kiosk on the local API · customers shown as refs, cards masked", p.w.pty.Path())
	p.say("")
	for i, s := range steps {
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("step %d (%s) failed: %w", i, s.name, err)
		}
		p.day.Steps = i
	}
	return nil
}

// opening waits for the morning sync, picks the day's customers, and
// takes the store's link down.
func (p *play) opening(ctx context.Context) error {
	w := p.w
	err := waitFor(ctx, func() bool { c, _ := w.ag.Cursor(); return c >= 1 && w.db.QueuedRecords() == 0 },
		func() string {
			c, _ := w.ag.Cursor()
			return fmt.Sprintf("the agent did not load the central's snapshot (cursor %d)", c)
		})
	if err != nil {
		return err
	}
	cs, err := w.ag.CacheStats()
	if err != nil {
		return err
	}
	if cs.Profiles == 0 {
		return errors.New("the snapshot left no profile in the cache")
	}
	cursor, _ := w.ag.Cursor()
	if p.alice, err = pickCustomer(p.day.Customers, 0); err != nil {
		return err
	}
	if p.bob, err = pickCustomer(p.day.Customers, p.alice.Index+1); err != nil {
		return err
	}
	p.say("0. 08:55 the store opens: the agent syncs with the central → %d customer slices cached (consent-scoped), change cursor %d", cs.Profiles, cursor)
	w.broker.Stop()
	if err := waitFor(ctx, func() bool { return !w.link.Status().Link.Connected },
		func() string { return "the agent still reports its link up" }); err != nil {
		return err
	}
	p.say("   08:58 the store's internet link goes down (broker stopped) → the agent carries on offline")
	return nil
}

// pickCustomer returns the first customer from index from on who granted
// the loyalty purpose.
func pickCustomer(gen central.Customers, from int) (central.Customer, error) {
	for i := from; i < gen.N; i++ {
		cu, err := gen.Customer(i)
		if err != nil {
			return central.Customer{}, err
		}
		if cu.Consent[loyalty].Status == wire.StatusGranted {
			return cu, nil
		}
	}
	return central.Customer{}, errors.New("no synthetic customer granted the loyalty purpose")
}

// scan sends alice's card through the pty and reads what the till made
// of it, then the POS asks for the loyalty view.
func (p *play) scan(ctx context.Context) error {
	w := p.w
	if err := w.pty.Send(p.alice.Loyalty, "\r"); err != nil {
		return fmt.Errorf("write to the scanner's pty: %w", err)
	}
	var res struct{ outcome, userID string }
	select {
	case r := <-w.scans:
		res.outcome, res.userID = r.Outcome, r.UserID
	case <-time.After(stepTimeout):
		return fmt.Errorf("the till's scanner handed no scan to the agent within %s", stepTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	if res.outcome != "known" {
		return fmt.Errorf("the card read as %q, want a known customer", res.outcome)
	}
	id, err := w.pos.Identify(ctx, localapi.IdentifyRequest{Scan: p.alice.Loyalty, Purpose: loyalty, Device: posID})
	if err != nil {
		return err
	}
	tier, ok := attr(id.Attributes, "tier")
	if !id.Known || !id.Permitted || id.UserID != res.userID || !ok {
		return fmt.Errorf("the POS's loyalty lookup: known=%t permitted=%t tier=%t, want all true for the scanned customer", id.Known, id.Permitted, ok)
	}
	p.userID = id.UserID
	p.say("1. 09:02 the till's scanner reads a loyalty card %s → known customer %s, tier %v (loyalty purpose), answered offline",
		card(p.alice.Loyalty), p.ref(id.UserID), tier)
	return nil
}

func attr(attrs []agent.Attribute, name string) (any, bool) {
	for _, a := range attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return nil, false
}

// purchase records alice's purchase at the POS with the link down.
func (p *play) purchase(ctx context.Context) error {
	w := p.w
	res, err := w.pos.Capture(ctx, localapi.EventRequest{
		Event: "Order Completed", UserID: p.userID, Device: posID,
		Properties: map[string]any{"order_id": "T-0001", "total": 59.90, "currency": "EUR", "items": 2},
	})
	if err != nil {
		return err
	}
	if res.Outcome != agent.OutcomeQueued {
		return fmt.Errorf("the purchase was %s, want queued with identity", res.Outcome)
	}
	queued := w.db.QueuedRecords()
	if queued == 0 || w.link.Status().Link.Connected {
		return fmt.Errorf("outbox %d, link up %t: want events waiting and the link down", queued, w.link.Status().Link.Connected)
	}
	p.say("2. 09:03 the POS records a purchase (Order Completed, 2 items, 59.90 EUR) → 202, safe on disk; outbox: %d event(s) waiting, link down", queued)
	return nil
}

// linkBack restarts the broker and watches the outbox drain.
func (p *play) linkBack(ctx context.Context) error {
	w := p.w
	before := w.db.QueuedRecords()
	if err := w.broker.Start(); err != nil {
		return err
	}
	if err := p.drained(ctx); err != nil {
		return err
	}
	r := p.centralView()
	if r.Unique == 0 {
		return errors.New("the outbox drained but the central recorded nothing")
	}
	p.say("3. 09:40 the link comes back → the agent reconnects and syncs: outbox %d → 0, the central acknowledged %d event(s)", before, r.Unique)
	return nil
}

// drained waits until the link is up, the outbox empty and the central
// connected.
func (p *play) drained(ctx context.Context) error {
	w := p.w
	return waitFor(ctx, func() bool {
		return w.link.Status().Link.Connected && w.db.QueuedRecords() == 0 && w.central.Connected()
	}, func() string {
		return fmt.Sprintf("link up %t, outbox %d, central connected %t: want up, 0, true",
			w.link.Status().Link.Connected, w.db.QueuedRecords(), w.central.Connected())
	})
}

// centralView is the central's live record of the agent.
func (p *play) centralView() central.AgentReport {
	for _, a := range p.w.central.Report().Agents {
		if a.Store == storeID && a.Agent == agentID {
			return a
		}
	}
	return central.AgentReport{}
}

// withdraw has alice withdraw her loyalty consent at the kiosk.
func (p *play) withdraw(ctx context.Context) error {
	w := p.w
	held, err := w.kiosk.Held(ctx, p.userID)
	if err != nil {
		return err
	}
	before := countPurpose(held.Attributes, loyalty)
	res, err := w.kiosk.SetConsent(ctx, p.userID, localapi.ConsentRequest{Purpose: loyalty, Status: "withdrawn", Device: kioskID})
	if err != nil {
		return err
	}
	if !res.Applied || res.Purged == 0 {
		return fmt.Errorf("withdrawal applied %t, %d attribute(s) purged: want applied and some purged", res.Applied, res.Purged)
	}
	id, err := w.kiosk.Identify(ctx, localapi.IdentifyRequest{Scan: p.alice.Loyalty, Purpose: loyalty, Device: kioskID})
	if err != nil {
		return err
	}
	if held, err = w.kiosk.Held(ctx, p.userID); err != nil {
		return err
	}
	if id.Permitted || len(id.Attributes) > 0 || countPurpose(held.Attributes, loyalty) > 0 {
		return fmt.Errorf("after the withdrawal: permitted=%t, %d attribute(s) answered, %d loyalty attribute(s) held; want none",
			id.Permitted, len(id.Attributes), countPurpose(held.Attributes, loyalty))
	}
	if err := p.drained(ctx); err != nil {
		return err
	}
	p.say("4. 11:15 customer %s withdraws loyalty consent at the kiosk → applied at once: %d of %d loyalty attribute(s) purged,",
		p.ref(p.userID), res.Purged, before)
	p.say("   the loyalty lookup now answers nothing (not permitted), %d attribute(s) of other purposes stay; the decision is synced to the central",
		len(held.Attributes))
	return nil
}

func countPurpose(attrs []agent.HeldAttr, purpose string) int {
	n := 0
	for _, a := range attrs {
		if a.Purpose == purpose {
			n++
		}
	}
	return n
}

// erase has the central erase bob and checks the agent forgot him.
func (p *play) erase(ctx context.Context) error {
	w := p.w
	ask := localapi.IdentifyRequest{Kind: string(ident.Loyalty), Value: p.bob.Loyalty, Purpose: loyalty, Device: posID}
	id, err := w.pos.Identify(ctx, ask)
	if err != nil {
		return err
	}
	if !id.Known {
		return errors.New("the customer to erase is not known to the agent beforehand")
	}
	userID := id.UserID
	res, err := w.central.PublishRequest(ctx, central.ChangeRequest{Kind: "erase", Customer: &p.bob.Index})
	if err != nil {
		return err
	}
	err = waitFor(ctx, func() bool { c, _ := w.ag.Cursor(); return c >= res.Seq },
		func() string {
			c, _ := w.ag.Cursor()
			return fmt.Sprintf("the agent's cursor is %d, want the erasure's seq %d", c, res.Seq)
		})
	if err != nil {
		return err
	}
	appended, err := w.db.OutboxStats()
	if err != nil {
		return err
	}
	if id, err = w.pos.Identify(ctx, ask); err != nil {
		return err
	}
	if id.Known {
		return errors.New("after the erasure the card still reads as a known customer")
	}
	// An unknown card queues an anonymous identify event, off the answer's
	// path: wait for it, so that the day's record is the same every run.
	err = waitFor(ctx, func() bool { s, _ := w.db.OutboxStats(); return s.LastSeq > appended.LastSeq },
		func() string { return "the unknown card's identify event never reached the outbox" })
	if err != nil {
		return err
	}
	if _, err := w.pos.Held(ctx, userID); !localapi.IsUnknownProfile(err) {
		return fmt.Errorf("after the erasure the store still answers for the profile (err %v)", err)
	}
	if err := p.drained(ctx); err != nil {
		return err
	}
	p.say("5. 16:30 the central erases customer %s (change seq %d) → the agent applied it: card %s now reads as unknown,",
		p.ref(userID), res.Seq, card(p.bob.Loyalty))
	p.say("   no profile held any more; its receipt (Rights Request Applied) and an anonymous identify event go up to the central")
	return nil
}

// report reads what the central recorded, once everything has stopped,
// checks it and prints it.
func (p *play) report(dir string) error {
	r, err := central.ReadReport(dir)
	if err != nil {
		return err
	}
	for _, a := range r.Agents {
		if a.Store == storeID && a.Agent == agentID {
			p.day.Report = a
		}
	}
	p.day.Received = map[string]int{}
	err = central.ReadEvents(dir, func(e central.ReceivedEvent) error {
		if e.Event != nil && e.Agent == agentID {
			name := e.Event.Event
			if name == "" {
				name = "(" + string(e.Event.Type) + ")"
			}
			p.day.Received[name]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	a := p.day.Report
	p.say("")
	p.say("What the central received from %s/%s:", storeID, agentID)
	p.say("   %d event(s) in %d batch(es): %d unique, %d duplicate(s), %d out of order, %d gap(s), %d invalid",
		a.Received, a.Batches, a.Unique, a.Duplicates, a.OutOfOrder, a.Gaps, a.Invalid)
	var names []string
	for _, n := range slices.Sorted(maps.Keys(p.day.Received)) {
		names = append(names, fmt.Sprintf("%s ×%d", n, p.day.Received[n]))
	}
	p.say("   by event: %s", strings.Join(names, " · "))
	for _, s := range r.Stores {
		if s.Store == storeID {
			p.say("   its change stream for %s: seq %d (baseline of %d customers, %d erase)", s.Store, s.Seq, p.day.Customers.N, s.Changes["erase"])
		}
	}
	if a.Unique == 0 || a.OutOfOrder > 0 || a.Gaps > 0 || a.Invalid > 0 {
		return fmt.Errorf("the central's record: %d unique, %d out of order, %d gaps, %d invalid; want events, in order, none refused",
			a.Unique, a.OutOfOrder, a.Gaps, a.Invalid)
	}
	for _, n := range wantEvents {
		if p.day.Received[n] == 0 {
			return fmt.Errorf("the central never received %q", n)
		}
	}
	p.say("The day is over: every step checked out, and no clear identifier left the store's devices in this narration.")
	return nil
}

// waitFor polls cond until it holds, stepTimeout passes or ctx ends; the
// error says what was awaited, from what().
func waitFor(ctx context.Context, cond func() bool, what func() string) error {
	deadline := time.Now().Add(stepTimeout)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %s", stepTimeout, what())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
