// Package providertest is spuff's conformance suite and the home of its
// simulated clouds.
//
// Run checks every contract of provider.Provider against a driver talking
// to a simulated cloud: lifecycle, validation before any call, idempotent
// destroy, pagination, ownership, image resolution, waiting, snapshots, SSH
// keys, error classification, and behaviour under injected faults (a lost
// create answer must leave exactly one machine). Every driver of this module
// runs it; a third-party driver can too, by building its simulated cloud on
// package simcloud and filling in a Harness.
//
// The simulated clouds are in sub-packages: simcloud is the model; dosim,
// hcloudsim and ec2sim serve it in the DigitalOcean, Hetzner Cloud and EC2
// wire formats, so the official SDKs run against them unmodified. Start one
// in your own tests:
//
//	srv := dosim.Start(t, simcloud.Options{})
//	p, err := digitalocean.Open(ctx, provider.Config{Endpoint: srv.URL, Token: provider.Secret(srv.Cloud.Token())})
package providertest

import (
	"context"
	"testing"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// Harness connects the conformance suite to one driver and its simulated
// cloud.
type Harness struct {
	// Name is the provider's registered name.
	Name string
	// Start serves a fresh simulated cloud for one test, with the dialect's
	// catalogue and defaults under opts, and closes it at the test's end.
	Start func(t testing.TB, opts simcloud.Options) *simcloud.Server
	// Config returns a Config that reaches srv with valid credentials
	// (Endpoint plus Token, or AWS keys and Region).
	Config func(srv *simcloud.Server) provider.Config
	// Open builds the provider under test from cfg. Nil means
	// provider.Open(ctx, Name, cfg).
	Open func(ctx context.Context, cfg provider.Config) (provider.Provider, error)
	// Request returns a valid request named name: a region and size the
	// simulated cloud has, and the image provider.Ubuntu("24.04").
	Request func(name string) provider.InstanceRequest
	// CustomImage returns an image ID or slug of srv's catalogue, for
	// provider.CustomImage, and the model ID of that image.
	CustomImage func(srv *simcloud.Server) (ref string, modelID int64)
	// ModelID maps a provider instance or snapshot ID to the model's ID
	// (EC2's "i-…" to its number). Nil means strconv.ParseInt(id, 10, 64).
	ModelID func(id string) (int64, error)
	// MissingID is an instance ID in the provider's format that no instance
	// has.
	MissingID string
	// ListPageSize is the page size the driver asks for when listing
	// instances; the suite checks that listing takes the fewest pages.
	ListPageSize int
	// MalformedIDs are instance IDs that cannot be the cloud's (not of its
	// format), and MalformedSnapshotIDs snapshot IDs: before any API call,
	// GetInstance and WaitReady refuse them with ErrNotFound,
	// DestroyInstance, CreateSnapshot and DeleteSnapshot with
	// ErrInvalidConfig naming the field "id".
	MalformedIDs, MalformedSnapshotIDs []string
	// BadRequests are the driver's own invalid requests (its cloud's
	// limits), which the suite checks next to CommonBadRequests: each must
	// be refused before any API call, naming its field.
	BadRequests []BadRequest
	// Republish, if set, publishes in srv a newer image of the one req
	// names (a newer Ubuntu AMI under the same name pattern, a new image
	// ID behind a name), as clouds do, and returns the model ID of the
	// image a create of req now boots.
	Republish func(srv *simcloud.Server, req provider.InstanceRequest) int64
	// Skip names suite tests (by subtest name) the driver cannot pass on
	// purpose, with the reason; they are skipped, not failed.
	Skip map[string]string
	// Catalog, if set, returns the catalogue srv serves as the driver
	// must report it (provider.FetchCatalog): its regions with their
	// availability, its sizes with the regions each is offered in now and
	// the prices the cloud publishes, read from the dialect's own tables
	// and srv.Cloud. Nil skips the check of the catalogue's content.
	Catalog func(srv *simcloud.Server) *provider.Catalog
}
