package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/digitalocean/godo"
	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// TestSimServe starts `spuffctl sim serve` as a long-running process,
// reaches its three clouds from a separate program that uses only the
// official SDKs and the exported environment (and from the AWS CLI when it
// is installed), checks that spuffctl itself sees what that program made,
// and that SIGINT stops the server cleanly with its state saved.
func TestSimServe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := e.command(ctx, "sim", "serve")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var serveErr bytes.Buffer
	srv.Stderr = &serveErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exported := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for len(exported) < 9 && sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok && strings.HasPrefix(sc.Text(), "export ") {
			exported[k] = v
		}
	}
	if len(exported) < 9 {
		_ = srv.Process.Kill()
		_ = srv.Wait()
		t.Fatalf("sim serve printed %v; stderr:\n%s", exported, serveErr.String())
	}
	for _, k := range []string{"DIGITALOCEAN_API_URL", "HCLOUD_ENDPOINT", "AWS_ENDPOINT_URL"} {
		u, err := url.Parse(exported[k])
		if err != nil || u.Hostname() != "127.0.0.1" {
			t.Errorf("%s=%s: want a loopback URL", k, exported[k])
		}
	}

	// A separate program on the official SDKs, configured only by the
	// exported environment.
	client := exec.CommandContext(ctx, os.Args[0])
	client.Env = []string{"SPUFFCTL_TEST_ROLE=sdk-client", "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	for k, v := range exported {
		client.Env = append(client.Env, k+"="+v)
	}
	out, err := client.Output()
	if err != nil {
		stop(t, srv)
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("the SDK program failed: %v\n%s\nserver:\n%s", err, stderr, serveErr.String())
	}
	var made map[string]string // provider -> ID
	if err := json.Unmarshal(out, &made); err != nil || len(made) != 3 {
		stop(t, srv)
		t.Fatalf("the SDK program printed %q (%v)", out, err)
	}

	// spuffctl sees them: in simulated mode it uses the running server
	// (the state is the server's while it runs) ...
	for p, id := range made {
		r := e.must("ls", "--provider", p, "--json")
		if !strings.Contains(r.stdout, `"id": "`+id+`"`) || !strings.Contains(r.stderr, "sim serve") {
			t.Errorf("spuffctl ls --provider %s, while serving, does not show %s made by the SDK:\n%v", p, id, r)
		}
	}
	// ... and named with the exported credentials, as a real cloud would
	// be reached.
	real := newEnv(t)
	for k, v := range exported {
		real.vars[k] = v
	}
	for p, id := range made {
		r := real.must("ls", "--provider", p, "--json")
		if !strings.Contains(r.stdout, `"id": "`+id+`"`) || strings.Contains(r.stderr, "simulated") {
			t.Errorf("spuffctl ls --provider %s with the exported environment does not reach the server:\n%v", p, r)
		}
	}

	// The AWS CLI, when installed.
	if aws, err := exec.LookPath("aws"); err != nil {
		t.Log("the AWS CLI is not installed: skipping its check")
	} else {
		cmd := exec.CommandContext(ctx, aws, "ec2", "describe-instances", "--output", "json")
		cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
		for k, v := range exported {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), made["aws"]) {
			t.Errorf("aws ec2 describe-instances against the server (%v):\n%s", err, out)
		}
	}

	if code := stop(t, srv); code != exitOK {
		t.Errorf("sim serve exited %d after SIGINT, want 0\n%s", code, serveErr.String())
	}
	if !strings.Contains(serveErr.String(), "saved the simulated") {
		t.Errorf("sim serve did not say it saved the state:\n%s", serveErr.String())
	}
	// The state outlives the server.
	for p, id := range made {
		r := e.must("ls", "--provider", p, "--json")
		if !strings.Contains(r.stdout, `"id": "`+id+`"`) || !strings.Contains(r.stderr, "state in") {
			t.Errorf("after the server stopped, ls --provider %s does not show %s:\n%v", p, id, r)
		}
	}
}

// stop sends SIGINT to a server and returns its exit status.
func stop(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Error(err)
	}
	_ = cmd.Wait()
	return cmd.ProcessState.ExitCode()
}

// sdkClientMain is the separate program of TestSimServe: it makes one
// machine, labelled as spuff's, on each served cloud with the official
// SDKs, configured by nothing but the environment `sim serve` printed,
// checks that each cloud lists it, and prints {"provider": "id"}.
func sdkClientMain() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	made := map[string]string{}
	for _, step := range []struct {
		name string
		fn   func(context.Context) (string, error)
	}{{"digitalocean", godoClient}, {"hetzner", hcloudClient}, {"aws", ec2Client}} {
		id, err := step.fn(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", step.name, err)
			return 1
		}
		made[step.name] = id
	}
	if err := json.NewEncoder(os.Stdout).Encode(made); err != nil {
		return 1
	}
	return 0
}

func godoClient(ctx context.Context) (string, error) {
	c := godo.NewFromToken(os.Getenv("DIGITALOCEAN_TOKEN"))
	base, err := url.Parse(os.Getenv("DIGITALOCEAN_API_URL") + "/")
	if err != nil {
		return "", err
	}
	c.BaseURL = base
	d, _, err := c.Droplets.Create(ctx, &godo.DropletCreateRequest{
		Name: "sdk-do", Region: "nyc3", Size: "s-1vcpu-1gb",
		Image: godo.DropletCreateImage{Slug: "ubuntu-24-04-x64"}, Tags: []string{"managed-by:spuff"},
	})
	if err != nil {
		return "", err
	}
	// A listing lags a create by seconds (scaled), as DigitalOcean's does.
	err = listed(func() (bool, error) {
		list, _, err := c.Droplets.ListByTag(ctx, "managed-by:spuff", nil)
		return slices.ContainsFunc(list, func(l godo.Droplet) bool { return l.ID == d.ID }), err
	})
	if err != nil {
		return "", fmt.Errorf("droplet %d: %w", d.ID, err)
	}
	return fmt.Sprint(d.ID), nil
}

func hcloudClient(ctx context.Context) (string, error) {
	c := hcloud.NewClient(hcloud.WithToken(os.Getenv("HCLOUD_TOKEN")), hcloud.WithEndpoint(os.Getenv("HCLOUD_ENDPOINT")))
	res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{
		Name: "sdk-hz", ServerType: &hcloud.ServerType{Name: "cx22"}, Image: &hcloud.Image{Name: "ubuntu-24.04"},
		Location: &hcloud.Location{Name: "fsn1"}, Labels: map[string]string{"managed-by": "spuff"},
	})
	if err != nil {
		return "", err
	}
	err = listed(func() (bool, error) {
		list, err := c.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "managed-by=spuff"}})
		return slices.ContainsFunc(list, func(s *hcloud.Server) bool { return s.ID == res.Server.ID }), err
	})
	if err != nil {
		return "", fmt.Errorf("server %d: %w", res.Server.ID, err)
	}
	return fmt.Sprint(res.Server.ID), nil
}

func ec2Client(ctx context.Context) (string, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return "", err
	}
	c := ec2.NewFromConfig(cfg)
	imgs, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"099720109477"},
		Filters: []ec2types.Filter{{Name: awssdk.String("name"), Values: []string{"ubuntu/images/*ubuntu-noble-24.04-amd64-server-*"}}, {Name: awssdk.String("state"), Values: []string{"available"}}},
	})
	if err != nil {
		return "", err
	}
	if len(imgs.Images) == 0 {
		return "", fmt.Errorf("no Ubuntu 24.04 AMI")
	}
	sort.Slice(imgs.Images, func(i, j int) bool { return *imgs.Images[i].CreationDate > *imgs.Images[j].CreationDate })
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Micro, MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
			{Key: awssdk.String("Name"), Value: awssdk.String("sdk-aws")}, {Key: awssdk.String("managed-by"), Value: awssdk.String("spuff")},
		}}},
	})
	if err != nil {
		return "", err
	}
	id := *run.Instances[0].InstanceId
	// EC2's DescribeInstances lags RunInstances (eventual consistency).
	err = listed(func() (bool, error) {
		desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: awssdk.String("tag:managed-by"), Values: []string{"spuff"}}}})
		if err != nil {
			return false, err
		}
		for _, r := range desc.Reservations {
			for _, in := range r.Instances {
				if *in.InstanceId == id {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("instance %s: %w", id, err)
	}
	return id, nil
}

// listed repeats a listing until it shows what was made, for a few
// seconds: a cloud's listings lag its creates.
func listed(look func() (bool, error)) error {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ok, err := look()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("not listed after 10 s")
		}
	}
}
