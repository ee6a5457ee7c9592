package driver

import "context"

// Cataloger is implemented by a Driver whose cloud lists its regions and
// sizes. The portable layer caches what it returns (provider.FetchCatalog)
// and picks placements from it (provider.Pick).
type Cataloger interface {
	// Catalog reads the cloud's regions and sizes, every page of each
	// listing, with the hourly prices the cloud publishes. Reads only:
	// the portable layer retries it whole. A price the cloud does not
	// publish (or the caller may not read) is left out, never guessed;
	// Catalog.Notes says why.
	Catalog(ctx context.Context) (*Catalog, error)
}

// Catalog is what a cloud lists of its regions and sizes.
type Catalog struct {
	// Regions are the cloud's regions (locations, EC2 regions).
	Regions []Region
	// Sizes are the machine sizes (size slugs, server types, instance
	// types).
	Sizes []Size
	// Notes tell what the catalogue lacks and why ("prices unknown: the
	// credentials may not call pricing:GetProducts").
	Notes []string
}

// Region is a region as the cloud lists it.
type Region struct {
	// Name is the region's identifier in requests ("nyc3", "fsn1",
	// "eu-west-1").
	Name string
	// Description is the cloud's human name ("New York 3").
	Description string
	// Available reports that the region takes new machines now, as far
	// as the cloud says (DigitalOcean's available; on Hetzner a location
	// whose datacenter has server types available; on EC2 a region the
	// account is opted in to).
	Available bool
}

// Size is a machine size, normalised.
type Size struct {
	// Name is the size's identifier in requests ("s-1vcpu-1gb", "cx22",
	// "t3.micro").
	Name string
	// Description is the cloud's description or class ("Basic", "CX22").
	Description string
	// VCPUs is the number of virtual CPUs; MemoryMiB the memory in MiB;
	// DiskGB the local disk in GB (0 when the size has none, as EC2's
	// EBS-only types).
	VCPUs     int
	MemoryMiB int
	DiskGB    int
	// Arch is "x86_64" or "arm64".
	Arch string
	// Regions are the regions the size can be created in now, as the
	// cloud lists them.
	Regions []string
	// Prices are the hourly prices by region, for the regions where the
	// cloud publishes one.
	Prices map[string]Price
}

// Price is an hourly price as the cloud publishes it.
type Price struct {
	// Hourly is the price of an hour, taxes excluded.
	Hourly float64
	// Currency is the ISO 4217 code ("USD", "EUR").
	Currency string
}

// The architectures of Size.Arch.
const (
	ArchX86 = "x86_64"
	ArchARM = "arm64"
)
