package hcloudsim

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The wire types follow the Hetzner Cloud API's OpenAPI description: every
// required field is present, nullable ones are pointers or explicit nulls,
// and every timestamp is RFC 3339 (never an empty string, which hcloud-go
// cannot parse).

type wireError struct {
	Error wireErrorBody `json:"error"`
}

type wireErrorBody struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

type wirePagination struct {
	Page         int  `json:"page"`
	PerPage      int  `json:"per_page"`
	PreviousPage *int `json:"previous_page"`
	NextPage     *int `json:"next_page"`
	LastPage     int  `json:"last_page"`
	TotalEntries int  `json:"total_entries"`
}

type wireMeta struct {
	Pagination wirePagination `json:"pagination"`
}

type wireLocation struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Country     string  `json:"country"`
	City        string  `json:"city"`
	Latitude    float64 `json:"latitude"`
	Longitude   float64 `json:"longitude"`
	NetworkZone string  `json:"network_zone"`
}

type wireDatacenter struct {
	ID          int64                     `json:"id"`
	Name        string                    `json:"name"`
	Description string                    `json:"description"`
	Location    wireLocation              `json:"location"`
	ServerTypes wireDatacenterServerTypes `json:"server_types"`
}

type wireDatacenterServerTypes struct {
	Available             []int64 `json:"available"`
	AvailableForMigration []int64 `json:"available_for_migration"`
	Supported             []int64 `json:"supported"`
}

type wireServerType struct {
	ID           int64                    `json:"id"`
	Name         string                   `json:"name"`
	Description  string                   `json:"description"`
	Category     string                   `json:"category"`
	Cores        int                      `json:"cores"`
	Memory       float64                  `json:"memory"`
	Disk         float64                  `json:"disk"`
	Deprecated   bool                     `json:"deprecated"`
	Deprecation  *struct{}                `json:"deprecation"`
	Prices       []wirePrice              `json:"prices"`
	StorageType  string                   `json:"storage_type"`
	CPUType      string                   `json:"cpu_type"`
	Architecture string                   `json:"architecture"`
	Locations    []wireServerTypeLocation `json:"locations"`
}

type wireServerTypeLocation struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Deprecation *struct{} `json:"deprecation"`
	// Available and Recommended say whether the type can be ordered
	// there now (the API's newer fields, which hcloud-go reads).
	Available   bool `json:"available"`
	Recommended bool `json:"recommended"`
}

type wirePrice struct {
	Location          string     `json:"location"`
	PriceHourly       wireAmount `json:"price_hourly"`
	PriceMonthly      wireAmount `json:"price_monthly"`
	IncludedTraffic   int64      `json:"included_traffic"`
	PricePerTBTraffic wireAmount `json:"price_per_tb_traffic"`
}

type wireAmount struct {
	Net   string `json:"net"`
	Gross string `json:"gross"`
}

type wireImage struct {
	ID           int64             `json:"id"`
	Type         string            `json:"type"`
	Status       string            `json:"status"`
	Name         *string           `json:"name"`
	Description  string            `json:"description"`
	ImageSize    *float64          `json:"image_size"`
	DiskSize     float64           `json:"disk_size"`
	Created      string            `json:"created"`
	CreatedFrom  *wireCreatedFrom  `json:"created_from"`
	BoundTo      *int64            `json:"bound_to"`
	OSFlavor     string            `json:"os_flavor"`
	OSVersion    *string           `json:"os_version"`
	RapidDeploy  bool              `json:"rapid_deploy"`
	Protection   wireProtection    `json:"protection"`
	Deprecated   *string           `json:"deprecated"`
	Deleted      *string           `json:"deleted"`
	Labels       map[string]string `json:"labels"`
	Architecture string            `json:"architecture"`
}

type wireCreatedFrom struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type wireProtection struct {
	Delete bool `json:"delete"`
}

type wireServerProtection struct {
	Delete  bool `json:"delete"`
	Rebuild bool `json:"rebuild"`
}

type wireServer struct {
	ID              int64                `json:"id"`
	Name            string               `json:"name"`
	Status          string               `json:"status"`
	Created         string               `json:"created"`
	PublicNet       wirePublicNet        `json:"public_net"`
	PrivateNet      []struct{}           `json:"private_net"`
	ServerType      wireServerType       `json:"server_type"`
	Datacenter      wireDatacenter       `json:"datacenter"`
	Location        wireLocation         `json:"location"`
	Image           *wireImage           `json:"image"`
	ISO             *struct{}            `json:"iso"`
	RescueEnabled   bool                 `json:"rescue_enabled"`
	Locked          bool                 `json:"locked"`
	BackupWindow    *string              `json:"backup_window"`
	OutgoingTraffic *int64               `json:"outgoing_traffic"`
	IngoingTraffic  *int64               `json:"ingoing_traffic"`
	IncludedTraffic int64                `json:"included_traffic"`
	Protection      wireServerProtection `json:"protection"`
	Labels          map[string]string    `json:"labels"`
	Volumes         []int64              `json:"volumes"`
	LoadBalancers   []int64              `json:"load_balancers"`
	PrimaryDiskSize int                  `json:"primary_disk_size"`
	PlacementGroup  *struct{}            `json:"placement_group"`
}

type wirePublicNet struct {
	IPv4        *wireIPv4     `json:"ipv4"`
	IPv6        *wireIPv6     `json:"ipv6"`
	FloatingIPs []int64       `json:"floating_ips"`
	Firewalls   []wireFwState `json:"firewalls"`
}

type wireFwState struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
}

type wireIPv4 struct {
	ID      int64  `json:"id"`
	IP      string `json:"ip"`
	Blocked bool   `json:"blocked"`
	DNSPtr  string `json:"dns_ptr"`
}

type wireIPv6 struct {
	ID      int64         `json:"id"`
	IP      string        `json:"ip"`
	Blocked bool          `json:"blocked"`
	DNSPtr  []wireIPv6DNS `json:"dns_ptr"`
}

type wireIPv6DNS struct {
	IP     string `json:"ip"`
	DNSPtr string `json:"dns_ptr"`
}

type wireAction struct {
	ID        int64              `json:"id"`
	Command   string             `json:"command"`
	Status    string             `json:"status"`
	Progress  int                `json:"progress"`
	Started   string             `json:"started"`
	Finished  *string            `json:"finished"`
	Resources []wireActionTarget `json:"resources"`
	Error     *wireActionError   `json:"error"`
}

type wireActionTarget struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

type wireActionError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type wireSSHKey struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	Fingerprint string            `json:"fingerprint"`
	PublicKey   string            `json:"public_key"`
	Labels      map[string]string `json:"labels"`
	Created     string            `json:"created"`
}

// Requests.

type createServerRequest struct {
	Name       string            `json:"name"`
	ServerType idOrName          `json:"server_type"`
	Image      idOrName          `json:"image"`
	Location   idOrName          `json:"location"`
	Datacenter idOrName          `json:"datacenter"`
	SSHKeys    []idOrName        `json:"ssh_keys"`
	UserData   string            `json:"user_data"`
	Labels     map[string]string `json:"labels"`
}

type createImageRequest struct {
	Type        *string           `json:"type"`
	Description *string           `json:"description"`
	Labels      map[string]string `json:"labels"`
}

type updateRequest struct {
	Name        *string            `json:"name"`
	Description *string            `json:"description"`
	Labels      *map[string]string `json:"labels"`
}

// idOrName is a JSON string or number naming a resource by ID or name, as
// the API accepts them (hcloud-go sends IDs as numbers).
type idOrName string

func (v *idOrName) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "null":
		*v = ""
	case strings.HasPrefix(s, `"`):
		if len(s) < 2 || !strings.HasSuffix(s, `"`) || strings.ContainsAny(s[1:len(s)-1], `"\`) {
			return fmt.Errorf("invalid string %s", s)
		}
		*v = idOrName(s[1 : len(s)-1])
	default:
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return fmt.Errorf("invalid ID %s", s)
			}
		}
		*v = idOrName(s)
	}
	return nil
}

// Rendering.

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func ptr[T any](v T) *T { return &v }

func labelsOrEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// wireArch maps the model's architecture to Hetzner's ("x86", "arm").
func wireArch(arch string) string {
	switch arch {
	case "arm64", "arm", "aarch64":
		return "arm"
	}
	return "x86"
}

var osFlavors = map[string]bool{"alma": true, "centos": true, "debian": true, "fedora": true, "opensuse": true, "rocky": true, "ubuntu": true}

func (h *handler) image(m simcloud.Image, now time.Time) wireImage {
	w := wireImage{
		ID:           m.ID,
		Type:         imageType(&m),
		Status:       imageStatus(&m, now),
		Description:  m.Description,
		DiskSize:     float64(max(m.MinDiskGB, 1)),
		Created:      timestamp(m.CreatedAt),
		OSFlavor:     "unknown",
		Labels:       labelsOrEmpty(m.Labels),
		Architecture: wireArch(m.Arch),
		RapidDeploy:  m.Kind == simcloud.ImageDistribution,
	}
	if f := strings.ToLower(m.Distribution); osFlavors[f] {
		w.OSFlavor = f
	}
	if m.Version != "" {
		w.OSVersion = ptr(m.Version)
	}
	if m.Kind == simcloud.ImageSnapshot {
		w.ImageSize = ptr(m.SizeGB)
		if m.Source != 0 {
			from := wireCreatedFrom{ID: m.Source, Name: h.serverName(m.Source)}
			w.CreatedFrom = &from
		}
	} else {
		w.Name = ptr(m.Name)
	}
	return w
}

func (h *handler) action(a simcloud.Action, now time.Time) wireAction {
	w := wireAction{
		ID:       a.ID,
		Status:   "running",
		Progress: a.Progress(now),
		Started:  timestamp(a.StartedAt),
	}
	switch a.Type {
	case "create":
		w.Command = "create_server"
	case "delete":
		w.Command = "delete_server"
	case "snapshot":
		w.Command = "create_image"
	default:
		w.Command = a.Type
	}
	switch a.ResourceType {
	case "instance":
		w.Resources = []wireActionTarget{{ID: a.ResourceID, Type: "server"}}
	case "image":
		w.Resources = []wireActionTarget{{ID: a.ResourceID, Type: "image"}}
		if m, err := h.cloud.GetImage(a.ResourceID); err == nil && m.Source != 0 {
			w.Resources = append([]wireActionTarget{{ID: m.Source, Type: "server"}}, w.Resources...)
		}
	default:
		w.Resources = []wireActionTarget{{ID: a.ResourceID, Type: a.ResourceType}}
	}
	if a.Done(now) {
		w.Finished = ptr(timestamp(a.DoneAt))
		w.Status = "success"
		if a.Failed {
			w.Status = "error"
			w.Error = &wireActionError{Code: "action_failed", Message: "Action failed"}
			if a.Type == "snapshot" {
				w.Error = &wireActionError{Code: "image_creation_failed", Message: "Image creation failed"}
			}
		}
	}
	return w
}

func (h *handler) server(in simcloud.Instance, now time.Time) wireServer {
	loc := h.location(in.Region)
	st := h.serverType(in.Size)
	w := wireServer{
		ID:              in.ID,
		Name:            in.Name,
		Status:          "running",
		Created:         timestamp(in.CreatedAt),
		PublicNet:       wirePublicNet{FloatingIPs: []int64{}, Firewalls: []wireFwState{}},
		PrivateNet:      []struct{}{},
		ServerType:      st,
		Datacenter:      h.datacenter(loc),
		Location:        loc,
		IncludedTraffic: 21990232555520,
		Labels:          labelsOrEmpty(in.Labels),
		Volumes:         []int64{},
		LoadBalancers:   []int64{},
		PrimaryDiskSize: int(st.Disk),
	}
	w.Status = serverStatus(&in, now)
	w.Locked = h.locks && in.Busy(now)
	ip4, ip6 := in.PublicIPv4(now), in.PublicIPv6(now)
	if ip4.IsValid() {
		w.PublicNet.IPv4 = &wireIPv4{ID: in.ID + 1<<40, IP: ip4.String(), DNSPtr: ptrName(ip4)}
	}
	if ip6.IsValid() {
		prefix := netip.PrefixFrom(ip6, 64).Masked()
		w.PublicNet.IPv6 = &wireIPv6{ID: in.ID + 2<<40, IP: prefix.String(), DNSPtr: []wireIPv6DNS{}}
	}
	if m, err := h.cloud.GetImage(in.ImageID); err == nil {
		img := h.image(m, now)
		w.Image = &img
	}
	return w
}

// serverStatus is Hetzner's status of a server: "initializing" until it
// has its address, "starting" until it runs, then "running".
func serverStatus(in *simcloud.Instance, now time.Time) string {
	switch in.State(now) {
	case simcloud.StateNew:
		if in.PublicIPv4(now).IsValid() {
			return "starting"
		}
		return "initializing"
	case simcloud.StateDeleting, simcloud.StateDeleted:
		return "deleting"
	}
	return "running"
}

// imageType is Hetzner's type of an image: "system" or "snapshot".
func imageType(m *simcloud.Image) string {
	if m.Kind == simcloud.ImageSnapshot {
		return "snapshot"
	}
	return "system"
}

// imageStatus is "creating" until the image is usable, then "available",
// or "unavailable" for a snapshot that failed.
func imageStatus(m *simcloud.Image, now time.Time) string {
	switch m.State(now) {
	case simcloud.ImagePending:
		return "creating"
	case simcloud.ImageFailed:
		return "unavailable"
	}
	return "available"
}

// ptrName is the reverse DNS name Hetzner gives a server's IPv4 address.
func ptrName(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("static.%d.%d.%d.%d.clients.your-server.de", b[3], b[2], b[1], b[0])
}

func sshKey(k simcloud.SSHKey, created time.Time) wireSSHKey {
	return wireSSHKey{ID: k.ID, Name: k.Name, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey, Labels: map[string]string{}, Created: timestamp(created)}
}
