package dosim

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The wire types follow DigitalOcean's OpenAPI description: every required
// field is present (empty arrays, never null, where the schema is not
// nullable), enums hold only listed values, timestamps are RFC 3339 in UTC.

type wireError struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

type wireRegion struct {
	Name      string   `json:"name"`
	Slug      string   `json:"slug"`
	Features  []string `json:"features"`
	Available bool     `json:"available"`
	Sizes     []string `json:"sizes"`
}

type wireSize struct {
	Slug         string     `json:"slug"`
	Memory       int        `json:"memory"`
	VCPUs        int        `json:"vcpus"`
	Disk         int        `json:"disk"`
	Transfer     float64    `json:"transfer"`
	PriceMonthly float64    `json:"price_monthly"`
	PriceHourly  float64    `json:"price_hourly"`
	Regions      []string   `json:"regions"`
	Available    bool       `json:"available"`
	Description  string     `json:"description"`
	DiskInfo     []diskInfo `json:"disk_info"`
}

type diskInfo struct {
	Type string `json:"type"`
	Size struct {
		Amount int    `json:"amount"`
		Unit   string `json:"unit"`
	} `json:"size"`
}

type wireImage struct {
	ID            int64    `json:"id"`
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Distribution  string   `json:"distribution"`
	Slug          *string  `json:"slug"`
	Public        bool     `json:"public"`
	Regions       []string `json:"regions"`
	CreatedAt     string   `json:"created_at"`
	MinDiskSize   int      `json:"min_disk_size"`
	SizeGigabytes float64  `json:"size_gigabytes"`
	Description   string   `json:"description"`
	Tags          []string `json:"tags"`
	Status        string   `json:"status"`
	ErrorMessage  string   `json:"error_message"`
}

type wireNetworkV4 struct {
	IPAddress string `json:"ip_address"`
	Netmask   string `json:"netmask"`
	Gateway   string `json:"gateway"`
	Type      string `json:"type"`
}

type wireNetworkV6 struct {
	IPAddress string `json:"ip_address"`
	Netmask   int    `json:"netmask"`
	Gateway   string `json:"gateway"`
	Type      string `json:"type"`
}

type wireNetworks struct {
	V4 []wireNetworkV4 `json:"v4"`
	V6 []wireNetworkV6 `json:"v6"`
}

type wireDroplet struct {
	ID               int64        `json:"id"`
	Name             string       `json:"name"`
	Memory           int          `json:"memory"`
	VCPUs            int          `json:"vcpus"`
	Disk             int          `json:"disk"`
	DiskInfo         []diskInfo   `json:"disk_info"`
	Locked           bool         `json:"locked"`
	Status           string       `json:"status"`
	CreatedAt        string       `json:"created_at"`
	Features         []string     `json:"features"`
	BackupIDs        []int64      `json:"backup_ids"`
	NextBackupWindow *struct{}    `json:"next_backup_window"`
	SnapshotIDs      []int64      `json:"snapshot_ids"`
	Image            wireImage    `json:"image"`
	VolumeIDs        []string     `json:"volume_ids"`
	Size             wireSize     `json:"size"`
	SizeSlug         string       `json:"size_slug"`
	Networks         wireNetworks `json:"networks"`
	Region           wireRegion   `json:"region"`
	Tags             []string     `json:"tags"`
	VPCUUID          string       `json:"vpc_uuid"`
}

type wireAction struct {
	ID           int64       `json:"id"`
	Status       string      `json:"status"`
	Type         string      `json:"type"`
	StartedAt    string      `json:"started_at"`
	CompletedAt  *string     `json:"completed_at"`
	ResourceID   int64       `json:"resource_id"`
	ResourceType string      `json:"resource_type"`
	Region       *wireRegion `json:"region,omitempty"`
	RegionSlug   *string     `json:"region_slug"`
}

type wireActionLink struct {
	ID   int64  `json:"id"`
	Rel  string `json:"rel"`
	HREF string `json:"href"`
}

type wireSnapshot struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	CreatedAt     string   `json:"created_at"`
	Regions       []string `json:"regions"`
	MinDiskSize   int      `json:"min_disk_size"`
	SizeGigabytes float64  `json:"size_gigabytes"`
	ResourceID    string   `json:"resource_id"`
	ResourceType  string   `json:"resource_type"`
	Tags          []string `json:"tags"`
}

type wireDropletSnapshot struct {
	ID            int64    `json:"id"`
	Name          string   `json:"name"`
	CreatedAt     string   `json:"created_at"`
	Regions       []string `json:"regions"`
	MinDiskSize   int      `json:"min_disk_size"`
	SizeGigabytes float64  `json:"size_gigabytes"`
	Type          string   `json:"type"`
}

type wireKey struct {
	ID          int64  `json:"id"`
	Fingerprint string `json:"fingerprint"`
	PublicKey   string `json:"public_key"`
	Name        string `json:"name"`
}

type wireTagCount struct {
	Count         int    `json:"count"`
	LastTaggedURI string `json:"last_tagged_uri,omitempty"`
}

type wireTagResources struct {
	Count           int          `json:"count"`
	LastTaggedURI   string       `json:"last_tagged_uri,omitempty"`
	Droplets        wireTagCount `json:"droplets"`
	Images          wireTagCount `json:"images"`
	Volumes         wireTagCount `json:"volumes"`
	VolumeSnapshots wireTagCount `json:"volume_snapshots"`
	Databases       wireTagCount `json:"databases"`
}

type wireTag struct {
	Name      string           `json:"name"`
	Resources wireTagResources `json:"resources"`
}

type wirePages struct {
	First string `json:"first,omitempty"`
	Prev  string `json:"prev,omitempty"`
	Next  string `json:"next,omitempty"`
	Last  string `json:"last,omitempty"`
}

type wireLinks struct {
	Pages *wirePages `json:"pages,omitempty"`
}

type wireMeta struct {
	Total int `json:"total"`
}

// timestamp formats t as DigitalOcean does: RFC 3339, UTC, whole seconds.
func timestamp(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

var distributions = []string{"Arch Linux", "CentOS", "CoreOS", "Debian", "Fedora", "Fedora Atomic",
	"FreeBSD", "Gentoo", "openSUSE", "RancherOS", "Rocky Linux", "Ubuntu", "Unknown"}

// regionSlugs are the region slugs the OpenAPI description allows in an
// image's regions.
var regionSlugs = []string{"ams1", "ams2", "ams3", "blr1", "fra1", "lon1", "nyc1", "nyc2", "nyc3",
	"sfo1", "sfo2", "sfo3", "sgp1", "tor1", "syd1"}

func (h *Handler) region(slug string) wireRegion {
	name := Regions[slug]
	if name == "" {
		name = slug
	}
	sizes := make([]string, 0, len(h.cloud.Options().Sizes))
	for s := range h.cloud.Options().Sizes {
		if h.cloud.Available(slug, s) { // DigitalOcean lists what the region can place now
			sizes = append(sizes, s)
		}
	}
	slices.Sort(sizes)
	return wireRegion{Name: name, Slug: slug, Available: !h.cloud.RegionDisabled(slug), Sizes: sizes,
		Features: []string{"backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"}}
}

func (h *Handler) size(slug string) wireSize {
	s, ok := h.cloud.Options().Sizes[slug]
	info, known := Sizes[slug]
	if !ok {
		s = info.Size
	}
	if !known {
		info.Description = "Custom"
	}
	w := wireSize{
		Slug: slug, Memory: roundTo8(s.MemoryMB), VCPUs: s.VCPUs, Disk: s.DiskGB,
		Transfer: info.TransferTB, PriceMonthly: info.PriceMonthly, PriceHourly: info.PriceHourly,
		Regions: []string{}, Description: info.Description, DiskInfo: disks(s.DiskGB),
	}
	// "The region slugs where this size is available for Droplet
	// creates": the ones with room now.
	for _, r := range h.cloud.Options().Regions {
		if h.cloud.Available(r, slug) {
			w.Regions = append(w.Regions, r)
		}
	}
	w.Available = len(w.Regions) > 0
	if w.Memory < 8 {
		w.Memory = 8
	}
	return w
}

func roundTo8(n int) int { return (n + 7) / 8 * 8 }

func disks(gb int) []diskInfo {
	var d diskInfo
	d.Type = "local"
	d.Size.Amount = gb
	d.Size.Unit = "gib"
	return []diskInfo{d}
}

func (h *Handler) image(m simcloud.Image) wireImage {
	w := wireImage{
		ID: m.ID, Name: m.Name, Distribution: m.Distribution, Regions: []string{},
		CreatedAt: timestamp(m.CreatedAt), MinDiskSize: m.MinDiskGB, SizeGigabytes: m.SizeGB,
		Description: m.Description, Tags: Tags(m.Labels), Status: "available",
	}
	if !slices.Contains(distributions, w.Distribution) {
		w.Distribution = "Unknown"
	}
	for _, r := range m.Regions {
		if slices.Contains(regionSlugs, r) {
			w.Regions = append(w.Regions, r)
		}
	}
	switch m.Kind {
	case simcloud.ImageSnapshot:
		w.Type = "snapshot"
	default:
		w.Type = "base"
		w.Public = true
		if m.Slug != "" {
			slug := m.Slug
			w.Slug = &slug
		}
	}
	if !m.Available(h.cloud.Now()) {
		w.Status = "pending"
	}
	return w
}

func (h *Handler) snapshot(m simcloud.Image) wireSnapshot {
	return wireSnapshot{
		ID: strconv.FormatInt(m.ID, 10), Name: m.Name, CreatedAt: timestamp(m.CreatedAt),
		Regions: nonNil(m.Regions), MinDiskSize: m.MinDiskGB, SizeGigabytes: m.SizeGB,
		ResourceID: strconv.FormatInt(m.Source, 10), ResourceType: "droplet", Tags: Tags(m.Labels),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// vpcUUID is a stable UUID of the default VPC of a region.
func vpcUUID(region string) string {
	f := fnv.New128a()
	f.Write([]byte("vpc:" + region))
	b := f.Sum(nil)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// privateIPv4 is the droplet's address in its VPC (10.0.0.0/8): shown in
// bodies only, never reached.
func privateIPv4(id int64) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 10<<24|uint32(id)&0xffffff)
	return netip.AddrFrom4(b)
}

func (h *Handler) droplet(in simcloud.Instance) wireDroplet {
	now := h.cloud.Now()
	sz := h.size(in.Size)
	d := wireDroplet{
		ID: in.ID, Name: in.Name, Memory: sz.Memory, VCPUs: sz.VCPUs, Disk: sz.Disk, DiskInfo: disks(sz.Disk),
		Locked: h.locked(in.ID), Status: in.State(now), CreatedAt: timestamp(in.CreatedAt),
		Features:  []string{"droplet_agent", "private_networking"},
		BackupIDs: []int64{}, SnapshotIDs: []int64{}, VolumeIDs: []string{},
		Size: sz, SizeSlug: in.Size, Region: h.region(in.Region), Tags: Tags(in.Labels),
		VPCUUID:  vpcUUID(in.Region),
		Networks: wireNetworks{V4: []wireNetworkV4{}, V6: []wireNetworkV6{}},
	}
	switch d.Status {
	case simcloud.StateDeleted:
		d.Status = "archive"
	case simcloud.StateDeleting:
		// A droplet whose DELETE was answered is still returned, as it was
		// (its destroy event locks it) until it is gone.
		d.Status, d.Locked = simcloud.StateActive, true
		if now.Before(in.ReadyAt) {
			d.Status = simcloud.StateNew
		}
	}
	if img, err := h.cloud.GetImage(in.ImageID); err == nil {
		d.Image = h.image(img)
	} else {
		d.Image = wireImage{ID: in.ImageID, Type: "snapshot", Distribution: "Unknown", Regions: []string{}, Tags: []string{},
			CreatedAt: timestamp(in.CreatedAt), Status: "deleted"}
	}
	snaps, _ := h.cloud.ListImages(func(m *simcloud.Image) bool {
		return m.Kind == simcloud.ImageSnapshot && m.Source == in.ID && m.Available(now)
	}, 0, 0)
	for _, s := range snaps {
		d.SnapshotIDs = append(d.SnapshotIDs, s.ID)
	}
	if d.Status != "new" || !now.Before(in.IPAt) {
		d.Networks.V4 = append(d.Networks.V4, wireNetworkV4{
			IPAddress: privateIPv4(in.ID).String(), Netmask: "255.255.240.0", Gateway: "10.0.0.1", Type: "private"})
	}
	if ip := in.PublicIPv4(now); ip.IsValid() {
		gw := ip.As4()
		gw[3] = 1
		d.Networks.V4 = append(d.Networks.V4, wireNetworkV4{
			IPAddress: ip.String(), Netmask: "255.255.255.0", Gateway: netip.AddrFrom4(gw).String(), Type: "public"})
	}
	if ip := in.PublicIPv6(now); ip.IsValid() && in.Extra["ipv6"] == "true" {
		gw := ip.As16()
		gw[14], gw[15] = 0, 1
		d.Networks.V6 = append(d.Networks.V6, wireNetworkV6{
			IPAddress: ip.String(), Netmask: 64, Gateway: netip.AddrFrom16(gw).String(), Type: "public"})
		d.Features = append(d.Features, "ipv6")
	}
	slices.Sort(d.Features)
	return d
}
