package simssh_test

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/digitalocean"
	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/simcloud"
	"github.com/spuffgo/spuff/providertest/simssh"
)

// Wait until a new machine of a simulated DigitalOcean can be logged in
// to, over real SSH: the SSH servers of the simulated machines are reached
// through Config.DialContext, the account gets a key whose private half
// the test holds, and the machine's host key is pinned (known in advance,
// as when the caller generates host keys and hands them to cloud-init).
func Example() {
	ctx := context.Background()
	srv := dosim.NewServer(simcloud.Options{World: simcloud.WorldSimple, Seed: 1, BootDelay: 50 * time.Millisecond})
	defer srv.Close()
	sshd := simssh.New(srv.Cloud, simssh.Options{})
	defer sshd.Close()
	signer, key := simssh.AddUserKey(srv.Cloud, "me", 1)

	cfg := dosim.Config(srv)
	cfg.DialContext = sshd.DialContext
	p, err := digitalocean.Open(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	inst, err := p.CreateInstance(ctx, provider.InstanceRequest{
		Name: "dev-1", Region: "nyc3", Size: "s-1vcpu-1gb", Image: provider.Ubuntu("24.04"),
		SSHKeys:  []string{strconv.FormatInt(key.ID, 10)},
		UserData: "#!/bin/sh\napt-get install -y git\n",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	id, _ := strconv.ParseInt(inst.ID, 10, 64)
	rep, err := provider.WaitSSH(ctx, p, inst.ID, provider.SSHOptions{
		Signers:   []ssh.Signer{signer},
		HostKeys:  provider.HostKeys(simssh.HostKey(srv.Cloud, id)),
		CloudInit: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range rep.Stages {
		fmt.Println(st.Stage)
	}
	fmt.Println("cloud-init:", rep.CloudInit.Status)
	_ = p.DestroyInstance(ctx, inst.ID)
	// Output:
	// api
	// port
	// handshake
	// auth
	// cloud-init
	// cloud-init: done
}
