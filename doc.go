// Package spuff creates, waits for, snapshots and destroys short-lived cloud
// machines on DigitalOcean, Hetzner Cloud and AWS EC2 through one interface.
//
// The portable API is in package provider; each cloud's driver is a
// sub-package that registers itself when imported. Pick a provider with a
// blank import and open it by name:
//
//	import (
//		"github.com/spuffgo/spuff/provider"
//		_ "github.com/spuffgo/spuff/provider/digitalocean"
//	)
//
//	func run(ctx context.Context) error {
//		p, err := provider.Open(ctx, "digitalocean", provider.Config{}) // DIGITALOCEAN_TOKEN
//		if err != nil {
//			return err
//		}
//		inst, err := p.CreateInstance(ctx, provider.InstanceRequest{
//			Name:   "dev-1",
//			Region: "nyc3",
//			Size:   "s-1vcpu-1gb",
//			Image:  provider.Ubuntu("24.04"),
//		})
//		if err != nil {
//			return err
//		}
//		defer p.DestroyInstance(context.WithoutCancel(ctx), inst.ID)
//		inst, err = p.WaitReady(ctx, inst.ID)
//		if err != nil {
//			return err
//		}
//		fmt.Println("ssh root@" + inst.IP().String())
//		return nil
//	}
//
// Package providertest holds the conformance suite every driver passes and
// simulated clouds that speak each cloud's HTTP API, so programs can test
// against them without credentials.
package spuff
