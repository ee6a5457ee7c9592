package aws_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/aws"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

func fastConfig(srv *simcloud.Server) provider.Config {
	return providertest.FastConfig(simConfig(srv))
}

func fastOptions() simcloud.Options {
	o := providertest.Options()
	o.BootDelay, o.SnapshotDelay = 2*time.Second, 2*time.Second // 20 ms at the suite's scale
	return o
}

func setup(t *testing.T, opts simcloud.Options, hopts ...ec2sim.HandlerOption) (*simcloud.Server, provider.Provider) {
	t.Helper()
	srv := ec2sim.StartWith(t, opts, hopts...)
	p, err := aws.Open(context.Background(), fastConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	return srv, p
}

func request(name string) provider.InstanceRequest {
	return provider.InstanceRequest{Name: name, Region: testRegion, Size: "t3.micro", Image: provider.Ubuntu("24.04")}
}

func model(t *testing.T, srv *simcloud.Server, id string) simcloud.Instance {
	t.Helper()
	n, err := ec2sim.ModelID(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range srv.Cloud.LiveInstances() { // the ground truth, visible to the API yet or not
		if in.ID == n {
			return in
		}
	}
	t.Fatalf("instance %s is not live in the simulated cloud", id)
	return simcloud.Instance{}
}

func imageOf(t *testing.T, srv *simcloud.Server, id string) simcloud.Image {
	t.Helper()
	img, err := srv.Cloud.GetImage(model(t, srv, id).ImageID)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestArchitecture(t *testing.T) {
	for typ, want := range map[string]string{
		"t3.micro": "x86_64", "m5.large": "x86_64", "c6a.xlarge": "x86_64", "g4dn.xlarge": "x86_64", "m7i-flex.large": "x86_64",
		"trn1.2xlarge": "x86_64", "c6in.large": "x86_64", "g5.xlarge": "x86_64", "p5.48xlarge": "x86_64",
		"a1.medium": "arm64", "t4g.micro": "arm64", "m6g.large": "arm64", "m6gd.large": "arm64", "m7g.large": "arm64",
		"c6g.large": "arm64", "c7gn.large": "arm64", "r6g.large": "arm64", "r7g.large": "arm64", "r8g.large": "arm64",
		"x2gd.large": "arm64", "im4gn.large": "arm64", "is4gen.large": "arm64", "g5g.xlarge": "arm64", "hpc7g.4xlarge": "arm64",
	} {
		if got := aws.Architecture(typ); got != want {
			t.Errorf("Architecture(%q) = %q, want %q", typ, got, want)
		}
	}
}

// TestAMIResolutionByArchitecture checks that Ubuntu and Debian specs boot
// the newest official AMI of the instance type's architecture, never a
// decoy (backports, minimal, Pro, pending, another owner's), and that
// creates made at once share one lookup (per region).
func TestAMIResolutionByArchitecture(t *testing.T) {
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	cases := []struct {
		size  string
		image provider.ImageSpec
		want  string
	}{
		{"t3.micro", provider.Ubuntu("24.04"), "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250301"},
		{"t4g.micro", provider.Ubuntu("24.04"), "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20250220"},
		{"m7g.large", provider.Ubuntu("22.04"), "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20250108"},
		{"t3.small", provider.Debian("12"), "debian-12-amd64-20250112-1989"},
		{"m7g.large", provider.Debian("12"), "debian-12-arm64-20250113-1990"},
		{"t4g.small", provider.Debian("11"), "debian-11-arm64-20240104-1616"},
	}
	for _, c := range cases {
		req := request("img")
		req.Size, req.Image = c.size, c.image
		inst, err := p.CreateInstance(ctx, req)
		if err != nil {
			t.Errorf("%s on %s: %v", c.image, c.size, err)
			continue
		}
		img := imageOf(t, srv, inst.ID)
		if img.Name != c.want {
			t.Errorf("%s on %s (%s) boots %s, want %s", c.image, c.size, aws.Architecture(c.size), img.Name, c.want)
		} else {
			t.Logf("%s on %s (%s) → %s", c.image, c.size, aws.Architecture(c.size), img.Name)
		}
		if err := p.DestroyInstance(ctx, inst.ID); err != nil {
			t.Fatal(err)
		}
	}
	// The first lookup is slow: the creates begun meanwhile wait for it
	// and take its AMI.
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListImages, Kind: simcloud.FaultSlow, Delay: time.Second})
	before := srv.Cloud.Calls(simcloud.OpListImages)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if _, err := p.CreateInstance(ctx, request(fmt.Sprintf("fleet-%d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := srv.Cloud.Calls(simcloud.OpListImages) - before; n < 1 || n > 2 {
		t.Errorf("6 creates made at once made %d image lookups, want them to share one (a late one may look again)", n)
	}
	before = srv.Cloud.Calls(simcloud.OpListImages)
	if _, err := p.CreateInstance(ctx, request("later")); err != nil {
		t.Fatal(err)
	}
	if n := srv.Cloud.Calls(simcloud.OpListImages) - before; n != 1 {
		t.Errorf("a later create made %d image lookups, want 1 (its own: an AMI may have been published since)", n)
	}
	before = srv.Cloud.Calls(simcloud.OpListImages)
	req := request("other-region")
	req.Region = "eu-west-1"
	if _, err := p.CreateInstance(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := srv.Cloud.Calls(simcloud.OpListImages) - before; n != 1 {
		t.Errorf("a create in another region made %d image lookups, want 1", n)
	}
}

func TestImageQuery(t *testing.T) {
	owner, pattern, ok := aws.ImageQuery(provider.ImageUbuntu, "24.04", "arm64")
	if !ok || owner != aws.CanonicalOwner || pattern != "ubuntu/images/hvm-ssd*/ubuntu-*-24.04-arm64-server-*" {
		t.Errorf("Ubuntu query = %s %s %v", owner, pattern, ok)
	}
	owner, pattern, ok = aws.ImageQuery(provider.ImageDebian, "12", "x86_64")
	if !ok || owner != aws.DebianOwner || pattern != "debian-12-amd64-*" {
		t.Errorf("Debian query = %s %s %v", owner, pattern, ok)
	}
	if _, _, ok := aws.ImageQuery(provider.ImageCustom, "ami-1", "x86_64"); ok {
		t.Error("a custom image has a query")
	}
}

// TestLostCreateResponseMakesOneInstance loses RunInstances' answer after
// the instance is made: the retry with the same ClientToken gets that
// instance back, and the caller's repeated request finds it by name.
func TestLostCreateResponseMakesOneInstance(t *testing.T) {
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	req := request("lost")
	inst, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatalf("CreateInstance after a lost answer: %v", err)
	}
	again, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatalf("the caller's retry: %v", err)
	}
	st := srv.Cloud.Stats()
	if st.FaultsInjected[simcloud.FaultLoseResponse] != 1 {
		t.Fatal("the lost-response fault was not served")
	}
	if st.Created != 1 || st.LiveInstances != 1 || again.ID != inst.ID {
		t.Errorf("%d instances created, %d live, IDs %s and %s; want exactly one", st.Created, st.LiveInstances, inst.ID, again.ID)
	}
	if n := st.Calls[simcloud.OpCreateInstance]; n != 2 {
		t.Errorf("%d RunInstances calls, want 2 (lost, retried with the same token; the caller's repeat finds it by name)", n)
	}
	m := model(t, srv, inst.ID)
	if tok := m.ClientToken; len(tok) == 0 || len(tok) > 64 {
		t.Errorf("client token %q: want 1 to 64 characters", tok)
	}
	t.Logf("lost create answer: %d RunInstances calls, %d instance, token %s", st.Calls[simcloud.OpCreateInstance], st.Created, m.ClientToken)
}

// TestCreateAfterDestroyMakesANewInstance: a create of a request whose
// earlier machine was destroyed launches a new one (a new call, a new
// token), and the next create finds that one.
func TestCreateAfterDestroyMakesANewInstance(t *testing.T) {
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	req := request("again")
	first, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyInstance(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	second, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	third, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID || third.ID != second.ID {
		t.Errorf("IDs %s, %s, %s: want a new instance after the destroy, then the same", first.ID, second.ID, third.ID)
	}
	if n := len(srv.Cloud.LiveInstances()); n != 1 {
		t.Errorf("%d live instances, want 1", n)
	}
}

// publishNewerUbuntu adds an Ubuntu 24.04 x86_64 AMI newer than any in
// the catalogue, as Canonical republishes under the same name pattern, and
// returns its model ID.
func publishNewerUbuntu(srv *simcloud.Server, date string) int64 {
	return srv.Cloud.AddImage(simcloud.Image{Kind: simcloud.ImageDistribution,
		Name:         "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-" + date,
		Distribution: "Ubuntu", Version: "24.04", Arch: "x86_64", Owner: ec2sim.CanonicalOwner, MinDiskGB: 8,
		CreatedAt: srv.Cloud.Now().Add(-time.Minute)})
}

// TestRepublishedAMI: Canonical publishes a newer AMI between two creates
// of the same request (the first destroyed). Neither the Provider that
// resolved the old AMI nor a new one fails (the old driver derived its
// ClientToken from the request and got IdempotentParameterMismatch, then
// failed every time); both boot the newer AMI; each create is one
// RunInstances.
func TestRepublishedAMI(t *testing.T) {
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	req := request("republished")
	first, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	old := model(t, srv, first.ID).ImageID
	if err := p.DestroyInstance(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	newer := publishNewerUbuntu(srv, "20260101")
	again, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatalf("the same request after a newer AMI, same Provider: %v", err)
	}
	if got := model(t, srv, again.ID).ImageID; got != newer {
		t.Errorf("the same Provider boots image %d after a newer AMI, want the newer %d (the old was %d)", got, newer, old)
	}
	if err := p.DestroyInstance(ctx, again.ID); err != nil {
		t.Fatal(err)
	}
	p2, err := aws.Open(ctx, fastConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	third, err := p2.CreateInstance(ctx, req)
	if err != nil {
		t.Fatalf("the same request after a newer AMI, new Provider: %v", err)
	}
	if got := model(t, srv, third.ID).ImageID; got != newer || got == old {
		t.Errorf("the new Provider boots image %d, want the newer %d (the old was %d)", got, newer, old)
	}
	if n := srv.Cloud.Calls(simcloud.OpCreateInstance); n != 3 {
		t.Errorf("%d RunInstances calls for three creates, want 3", n)
	}
	if n := len(srv.Cloud.LiveInstances()); n != 1 {
		t.Errorf("%d live instances, want 1", n)
	}
}

// TestRepublishedAMIAfterAnUnknownOutcome: a create's every attempt goes
// unanswered (the first made the instance, which EC2 does not list yet), a
// newer AMI is published, and the caller repeats the request: the repeat
// sends the first call's token and AMI again and gets its instance, with
// no IdempotentParameterMismatch and no second machine.
func TestRepublishedAMIAfterAnUnknownOutcome(t *testing.T) {
	opts := fastOptions()
	opts.ConsistencyDelay = 2 * time.Second
	srv, p := setup(t, opts)
	ctx := context.Background()
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultDrop, Count: 100})
	req := request("unknown-then-newer")
	if _, err := p.CreateInstance(ctx, req); err == nil || !provider.IsRetryable(err) {
		t.Fatalf("CreateInstance with every answer lost: %v, want a retryable error", err)
	}
	srv.Cloud.ClearFaults()
	live := srv.Cloud.LiveInstances()
	if len(live) != 1 {
		t.Fatalf("%d live instances after the lost answers, want 1", len(live))
	}
	publishNewerUbuntu(srv, "20260201")
	before := srv.Cloud.Calls(simcloud.OpCreateInstance)
	inst, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatalf("the caller's repeat after a newer AMI: %v", err)
	}
	if n, _ := ec2sim.ModelID(inst.ID); n != live[0].ID || len(srv.Cloud.LiveInstances()) != 1 {
		t.Errorf("the repeat returned %s with %d live instances; want the first one (%d)", inst.ID, len(srv.Cloud.LiveInstances()), live[0].ID)
	}
	// Either it is listed by now and adopted, or the first call's token
	// and AMI go again: one call at most, never a mismatch.
	if n := srv.Cloud.Calls(simcloud.OpCreateInstance) - before; n > 1 {
		t.Errorf("the repeat made %d RunInstances calls, want at most 1 (the first call's token and AMI again)", n)
	}
}

// TestCreateDestroyCyclesCostOneLaunchEach: 20 create/destroy cycles of
// one request each launch a new instance with one RunInstances (the old
// driver's cycle k cost k calls, and the 17th failed).
func TestCreateDestroyCyclesCostOneLaunchEach(t *testing.T) {
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	req := request("cycles")
	seen := map[string]bool{}
	for i := range 20 {
		before := srv.Cloud.Calls(simcloud.OpCreateInstance)
		inst, err := p.CreateInstance(ctx, req)
		if err != nil {
			t.Fatalf("cycle %d: %v", i+1, err)
		}
		if n := srv.Cloud.Calls(simcloud.OpCreateInstance) - before; n != 1 {
			t.Errorf("cycle %d cost %d RunInstances calls, want 1", i+1, n)
		}
		if seen[inst.ID] {
			t.Fatalf("cycle %d returned %s again, a destroyed instance", i+1, inst.ID)
		}
		seen[inst.ID] = true
		if err := p.DestroyInstance(ctx, inst.ID); err != nil {
			t.Fatalf("cycle %d: %v", i+1, err)
		}
	}
	if n := len(srv.Cloud.LiveInstances()); n != 0 {
		t.Errorf("%d live instances after 20 cycles", n)
	}
}

// TestTagsAtLaunch: Name, the ownership label and the labels are set on
// the instance and its volumes by RunInstances, with no CreateTags call;
// user data arrives decoded.
func TestTagsAtLaunch(t *testing.T) {
	srv := ec2sim.Start(t, fastOptions())
	p, err := aws.Open(context.Background(), fastConfig(srv),
		aws.WithSubnet("subnet-0abc"), aws.WithSecurityGroups("sg-1", "sg-2"), aws.WithInstanceProfile("dev-profile"), aws.WithVolumeSize(30))
	if err != nil {
		t.Fatal(err)
	}
	req := request("tagged")
	req.Labels = map[string]string{"env": "dev", "team": "core"}
	req.UserData = "#cloud-config\nruncmd: [echo ünïcode]\n\x00binary"
	inst, err := p.CreateInstance(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	m := model(t, srv, inst.ID)
	for k, v := range map[string]string{"managed-by": "spuff", "env": "dev", "team": "core"} {
		if m.Labels[k] != v || m.Extra["volume-tag:"+k] != v {
			t.Errorf("tag %s: instance %q, volume %q; want %q on both", k, m.Labels[k], m.Extra["volume-tag:"+k], v)
		}
	}
	if m.Name != "tagged" || m.Extra["volume-tag:Name"] != "tagged" {
		t.Errorf("Name tag: instance %q, volume %q", m.Name, m.Extra["volume-tag:Name"])
	}
	if m.UserData != req.UserData {
		t.Errorf("user data arrived as %q", m.UserData)
	}
	if n := srv.Cloud.Calls(simcloud.OpTag); n != 0 {
		t.Errorf("%d CreateTags calls, want none", n)
	}
	want := map[string]string{"subnet": "subnet-0abc", "security-groups": "sg-1,sg-2", "iam-profile": "dev-profile", "root-size": "30"}
	for k, v := range want {
		if m.Extra[k] != v {
			t.Errorf("option %s = %q, want %q", k, m.Extra[k], v)
		}
	}
}

// TestConsistencyWindow: the instance answers InvalidInstanceID.NotFound
// for a while after RunInstances. GetInstance and WaitReady wait for it,
// and a destroy right after the create is not lost.
func TestConsistencyWindow(t *testing.T) {
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	for range 2 {
		srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultConsistency, Delay: 150 * time.Millisecond})
	}
	a, err := p.CreateInstance(ctx, request("invisible-a"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.GetInstance(ctx, a.ID); err != nil || got.ID != a.ID {
		t.Errorf("GetInstance right after the create: %v", err)
	}
	if _, err := p.WaitReady(ctx, a.ID); err != nil {
		t.Errorf("WaitReady: %v", err)
	}
	b, err := p.CreateInstance(ctx, request("invisible-b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyInstance(ctx, b.ID); err != nil {
		t.Fatalf("DestroyInstance right after the create: %v", err)
	}
	if err := p.DestroyInstance(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Cloud.LiveInstances()); n != 0 {
		t.Errorf("%d instances live after destroying both: a destroy during the consistency window was lost", n)
	}
	if srv.Cloud.Stats().FaultsInjected[simcloud.FaultConsistency] != 2 {
		t.Error("the consistency faults were not served")
	}
	// An ID this Provider did not launch is simply not found.
	if _, err := p.GetInstance(ctx, ec2sim.InstanceID(0x7ffffffff)); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("GetInstance of a missing ID: %v", err)
	}
}

// TestSnapshotDeletionLeavesNoEBSSnapshot: deleting a snapshot removes the
// AMI and every EBS snapshot behind it, whether the endpoint honours
// DeleteAssociatedSnapshots or not, and finishes a delete an earlier run
// left half done.
func TestSnapshotDeletionLeavesNoEBSSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hopts []ec2sim.HandlerOption
	}{
		{"DeleteAssociatedSnapshots", nil},
		{"separate DeleteSnapshot calls", []ec2sim.HandlerOption{ec2sim.IgnoreDeleteAssociatedSnapshots()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, p := setup(t, fastOptions(), tc.hopts...)
			ctx := context.Background()
			inst, err := p.CreateInstance(ctx, request("snapsrc"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.WaitReady(ctx, inst.ID); err != nil {
				t.Fatal(err)
			}
			snap, err := p.CreateSnapshot(ctx, inst.ID, "dev box (2026) v1")
			if err != nil {
				t.Fatal(err)
			}
			vs := srv.Cloud.LiveVolumeSnapshots()
			if len(vs) != 1 || vs[0].Labels["managed-by"] != "spuff" || vs[0].Labels["Name"] != "dev box (2026) v1" {
				t.Fatalf("EBS snapshots behind the AMI: %+v, want one tagged as managed", vs)
			}
			if snap.SizeGB != 8 {
				t.Errorf("snapshot size %v GB, want 8", snap.SizeGB)
			}
			if err := p.DeleteSnapshot(ctx, snap.ID); err != nil {
				t.Fatal(err)
			}
			if err := p.DeleteSnapshot(ctx, snap.ID); err != nil {
				t.Errorf("deleting again: %v", err)
			}
			st := srv.Cloud.Stats()
			if st.LiveSnapshots != 0 || st.LiveVolumeSnapshots != 0 {
				t.Errorf("after DeleteSnapshot: %d AMIs and %d EBS snapshots left", st.LiveSnapshots, st.LiveVolumeSnapshots)
			}
			t.Logf("%s: %d DeregisterImage, %d DeleteSnapshot calls, no EBS snapshot left", tc.name, st.Calls[simcloud.OpDeleteImage], st.Calls[simcloud.OpDeleteVolume])

			// A delete an earlier run left half done: AMI gone, EBS
			// snapshot still billed.
			snap2, err := p.CreateSnapshot(ctx, inst.ID, "half-deleted")
			if err != nil {
				t.Fatal(err)
			}
			n, _ := ec2sim.ModelID(snap2.ID)
			if err := srv.Cloud.DeleteImage(n, false); err != nil {
				t.Fatal(err)
			}
			if err := p.DeleteSnapshot(ctx, snap2.ID); err != nil {
				t.Fatal(err)
			}
			if left := srv.Cloud.LiveVolumeSnapshots(); len(left) != 0 {
				t.Errorf("the orphaned EBS snapshot of a deregistered AMI is left: %+v", left)
			}
			if err := p.DestroyInstance(ctx, inst.ID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSnapshotLostAnswer: CreateImage's answer is lost; the retry adopts
// the AMI by name instead of failing on the duplicate name or making two.
func TestSnapshotLostAnswer(t *testing.T) {
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	inst, err := p.CreateInstance(ctx, request("snaplost"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitReady(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateSnapshot, Kind: simcloud.FaultLoseResponse})
	snap, err := p.CreateSnapshot(ctx, inst.ID, "lost-snap")
	if err != nil {
		t.Fatalf("CreateSnapshot after a lost answer: %v", err)
	}
	live := srv.Cloud.LiveSnapshots()
	if len(live) != 1 || ec2sim.ImageID(live[0].ID) != snap.ID {
		t.Errorf("%d AMIs live after a lost CreateImage answer, want the one returned (%s)", len(live), snap.ID)
	}
	again, err := p.CreateSnapshot(ctx, inst.ID, "lost-snap")
	if err != nil || again.ID != snap.ID {
		t.Errorf("a repeated CreateSnapshot: %v, %v; want the same AMI", again, err)
	}
	if err := p.DeleteSnapshot(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if st := srv.Cloud.Stats(); st.LiveSnapshots != 0 || st.LiveVolumeSnapshots != 0 {
		t.Errorf("leaked %d AMIs, %d EBS snapshots", st.LiveSnapshots, st.LiveVolumeSnapshots)
	}
}

func TestValidationMakesNoCall(t *testing.T) {
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	cases := map[string]struct {
		edit  func(*provider.InstanceRequest)
		field string
	}{
		"two SSH keys":      {func(r *provider.InstanceRequest) { r.SSHKeys = []string{"laptop", "ci"} }, "SSHKeys"},
		"label Name":        {func(r *provider.InstanceRequest) { r.Labels = map[string]string{"Name": "x"} }, `Labels["Name"]`},
		"custom not an AMI": {func(r *provider.InstanceRequest) { r.Image = provider.CustomImage("ubuntu-24-04-x64") }, "Image"},
		"snapshot not AMI":  {func(r *provider.InstanceRequest) { r.Image = provider.SnapshotImage("12345") }, "Image"},
		"not a type":        {func(r *provider.InstanceRequest) { r.Size = "s-1vcpu-1gb" }, "Size"},
		"not a region":      {func(r *provider.InstanceRequest) { r.Region = "nyc3" }, "Region"},
		"user data 16 KB+1": {func(r *provider.InstanceRequest) { r.UserData = strings.Repeat("x", 16385) }, "UserData"},
	}
	for name, c := range cases {
		req := request("valid")
		c.edit(&req)
		_, err := p.CreateInstance(ctx, req)
		var perr *provider.Error
		if !errors.As(err, &perr) || perr.Kind != provider.KindInvalidConfig || perr.Field != c.field {
			t.Errorf("%s: %v, want invalid config of field %s", name, err, c.field)
		}
	}
	for _, name := range []string{"a:b", "x", strings.Repeat("n", 129)} {
		if _, err := p.CreateSnapshot(ctx, ec2sim.InstanceID(1), name); !errors.Is(err, provider.ErrInvalidConfig) {
			t.Errorf("CreateSnapshot named %q: %v, want ErrInvalidConfig", name, err)
		}
	}
	if n := srv.Cloud.TotalCalls(); n != 0 {
		t.Errorf("invalid requests made %d calls", n)
	}
}

// TestSDKRetriesAreOff: one 500 costs one call per attempt of our policy;
// the SDK adds none, also on a client given to New that has the SDK's
// default (standard, 3 attempts) retryer.
func TestSDKRetriesAreOff(t *testing.T) {
	srv := ec2sim.Start(t, fastOptions())
	ctx := context.Background()
	cfg := fastConfig(srv)
	cfg.Retry.MaxAttempts = 1
	p, err := aws.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultInternal, Count: 3})
	_, err = p.ListInstances(ctx)
	if !provider.IsRetryable(err) || srv.Cloud.Calls(simcloud.OpListInstances) != 1 {
		t.Errorf("ListInstances with one attempt under a 500: %v after %d calls, want a retryable error after 1", err, srv.Cloud.Calls(simcloud.OpListInstances))
	}

	client := ec2.New(ec2.Options{Region: testRegion, BaseEndpoint: awssdk.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(srv.Cloud.Token(), "x", "")})
	pn, err := aws.New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Cloud.ResetCalls()
	_, err = pn.ListInstances(ctx)
	if err == nil || srv.Cloud.Calls(simcloud.OpListInstances) != 1 {
		t.Errorf("New(client with the standard retryer): %v after %d calls, want 1 call", err, srv.Cloud.Calls(simcloud.OpListInstances))
	}
	cfg.Retry.MaxAttempts = 3
	if pn, err = aws.New(client, cfg); err != nil {
		t.Fatal(err)
	}
	srv.Cloud.ResetCalls()
	if _, err := pn.ListInstances(ctx); err != nil || srv.Cloud.Calls(simcloud.OpListInstances) != 2 {
		t.Errorf("with our retries: %v after %d calls, want success after 2", err, srv.Cloud.Calls(simcloud.OpListInstances))
	}
	var got *ec2.Client
	if !pn.As(&got) || got != client {
		t.Error("As(**ec2.Client) does not give the client")
	}
	if _, err := aws.New(nil, cfg); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Errorf("New(nil): %v, want ErrInvalidConfig", err)
	}
}

func TestErrorClassification(t *testing.T) {
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultRateLimitBare, Count: 100})
	_, err := p.ListInstances(ctx)
	var perr *provider.Error
	if !errors.As(err, &perr) || perr.Kind != provider.KindRateLimit || perr.Code != "RequestLimitExceeded" || perr.Status != 503 {
		t.Errorf("throttling: %v, want rate limit with code RequestLimitExceeded and HTTP 503", err)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "RequestLimitExceeded" {
		t.Errorf("the SDK's error is not reachable with errors.As: %v", err)
	}
	srv.Cloud.ClearFaults()
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultUnavailable, Count: 100})
	_, err = p.ListInstances(ctx)
	if !errors.As(err, &perr) || perr.Kind != provider.KindAPI || perr.Code != "Unavailable" || !provider.IsRetryable(err) {
		t.Errorf("503 Unavailable: %v, want a retryable API error", err)
	}
	srv.Cloud.ClearFaults()
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultMalformed})
	if _, err := p.ListInstances(ctx); err != nil {
		t.Errorf("a garbled answer to a safe call is retried: %v", err)
	}
	if err := p.DestroyInstance(ctx, "i-12"); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Errorf("DestroyInstance of a malformed ID: %v", err)
	}
	if err := p.DeleteSnapshot(ctx, ec2sim.ImageID(0x7fffffff)); err != nil {
		t.Errorf("DeleteSnapshot of a missing AMI: %v", err)
	}
}

// TestRegions: instances launched in another region than the default are
// listed, found and destroyed; a fresh Provider finds them WithRegions.
func TestRegions(t *testing.T) {
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	req := request("eu")
	req.Region = "eu-central-1"
	eu, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	us, err := p.CreateInstance(ctx, request("us"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := p.ListInstances(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListInstances over two regions: %d, %v", len(list), err)
	}
	// A create in a region the cloud lacks leaves listings alone.
	bad := request("nowhere")
	bad.Region = "zz-nowhere-9"
	if _, err := p.CreateInstance(ctx, bad); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Errorf("create in a missing region: %v", err)
	}
	if list, err := p.ListInstances(ctx); err != nil || len(list) != 2 {
		t.Errorf("ListInstances after a create in a missing region: %d, %v", len(list), err)
	}
	fresh, err := aws.Open(ctx, fastConfig(srv), aws.WithRegions("eu-central-1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := fresh.GetInstance(ctx, eu.ID)
	if err != nil || got.Region != "eu-central-1" {
		t.Fatalf("GetInstance in another region: %+v, %v", got, err)
	}
	for _, id := range []string{eu.ID, us.ID} {
		if err := fresh.DestroyInstance(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Cloud.LiveInstances()); n != 0 {
		t.Errorf("%d live instances", n)
	}
}

// TestDefaultCredentialChain opens the driver without credentials in
// Config: the AWS default chain reads them from the environment.
func TestDefaultCredentialChain(t *testing.T) {
	srv := ec2sim.Start(t, fastOptions())
	t.Setenv("AWS_ACCESS_KEY_ID", srv.Cloud.Token())
	t.Setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg := fastConfig(srv)
	cfg.AccessKeyID, cfg.SecretAccessKey, cfg.Region = "", "", ""
	p, err := aws.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Cloud.AddInstances(1, func(int) simcloud.InstanceSpec {
		return simcloud.InstanceSpec{Name: "in-eu", Region: "eu-west-1", Size: "t3.micro", Labels: map[string]string{"managed-by": "spuff"}}
	})
	list, err := p.ListInstances(context.Background())
	if err != nil {
		t.Fatalf("ListInstances with credentials from the environment: %v", err)
	}
	if len(list) != 1 || list[0].Region != "eu-west-1" {
		t.Errorf("ListInstances = %d instances, want the one in eu-west-1, AWS_REGION", len(list))
	}
	if s := fmt.Sprint(p); strings.Contains(s, srv.Cloud.Token()) || strings.Contains(s, "from-the-environment") {
		t.Errorf("the Provider formats with a credential: %s", s)
	}
	cfg.AccessKeyID = "AKIDONLY"
	if _, err := aws.Open(context.Background(), cfg); !errors.Is(err, provider.ErrAuthentication) {
		t.Errorf("an access key without its secret: %v", err)
	}
}

// TestMissingCredentials: with no credentials anywhere, the first call
// fails with an authentication error naming the environment variables.
func TestMissingCredentials(t *testing.T) {
	srv := ec2sim.Start(t, fastOptions())
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg := fastConfig(srv)
	cfg.AccessKeyID, cfg.SecretAccessKey = "", ""
	p, err := aws.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.ListInstances(context.Background())
	if !errors.Is(err, provider.ErrAuthentication) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") || provider.IsRetryable(err) {
		t.Errorf("ListInstances without credentials: %v, want a final authentication error naming AWS_ACCESS_KEY_ID", err)
	}
	if n := srv.Cloud.TotalCalls(); n != 0 {
		t.Errorf("%d calls reached the cloud without credentials", n)
	}
}

// TestLargeAnswersWithoutRetries reads large answers with no retry
// allowed: a read of the answer must never fail because net/http closed
// the connection after a spurious write error on the request body.
func TestLargeAnswersWithoutRetries(t *testing.T) {
	srv := ec2sim.Start(t, unlimited(providertest.Options()))
	srv.Cloud.AddInstances(60, func(i int) simcloud.InstanceSpec {
		return simcloud.InstanceSpec{Name: "big", Region: testRegion, Size: "t3.micro", Labels: map[string]string{"managed-by": "spuff"}}
	})
	cfg := fastConfig(srv)
	cfg.Retry.MaxAttempts = 1
	p, err := aws.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if list, err := p.ListInstances(context.Background()); err != nil || len(list) != 60 {
			t.Fatalf("ListInstances #%d: %d instances, %v", i, len(list), err)
		}
	}
}
