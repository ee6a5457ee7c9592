package ec2sim

import (
	"encoding/xml"
	"slices"
	"strconv"
	"strings"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The catalogue: regions, instance types and their offerings, and (in
// pricing.go) the AWS Price List API's on-demand prices.
//
// DescribeRegions lists the cloud's Options.Regions as enabled
// ("opt-in-not-required"); with AllRegions it adds OptInRegions as
// "not-opted-in", as an account that never enabled them sees them.
// DescribeInstanceTypes describes the instance types of Options.Sizes
// (InstanceType.N, filters instance-type, processor-info.supported-
// architecture and current-generation; MaxResults 5 to 100, NextToken),
// and DescribeInstanceTypeOfferings lists every type in every enabled
// region (LocationType region; filters instance-type and location;
// MaxResults 5 to 1000). EC2 lists what a region offers, not what it has
// room for now: a placement out of capacity (simcloud.Cloud.SetCapacity)
// is still listed, and refused with InsufficientInstanceCapacity at
// RunInstances.

// OptInRegions are regions an account must enable (opt in to) before use.
var OptInRegions = []string{"af-south-1", "ap-east-1", "me-south-1"}

// typeDetail is what DescribeInstanceTypes says of a type beyond the
// model's simcloud.Size: AWS's published specifications.
type typeDetail struct {
	cores, threads int
	clockGHz       float64
	manufacturer   string
	burstable      bool
	network        string
}

// details are the specifications of the default catalogue's types (EC2
// instance types documentation: t3 and m5 on Intel Xeon, one core of two
// threads per 2 vCPUs; t4g and m7g on AWS Graviton2 and Graviton3, one
// thread a core).
var details = map[string]typeDetail{
	"t3.micro":  {1, 2, 3.1, "Intel", true, "Up to 5 Gigabit"},
	"t3.small":  {1, 2, 3.1, "Intel", true, "Up to 5 Gigabit"},
	"t3.medium": {1, 2, 3.1, "Intel", true, "Up to 5 Gigabit"},
	"m5.large":  {1, 2, 3.1, "Intel", false, "Up to 10 Gigabit"},
	"t4g.micro": {2, 1, 2.5, "AWS", true, "Up to 5 Gigabit"},
	"t4g.small": {2, 1, 2.5, "AWS", true, "Up to 5 Gigabit"},
	"m7g.large": {2, 1, 2.6, "AWS", false, "Up to 12.5 Gigabit"},
}

type regionXML struct {
	RegionName     string `xml:"regionName"`
	RegionEndpoint string `xml:"regionEndpoint"`
	OptInStatus    string `xml:"optInStatus"`
}

type describeRegionsResponse struct {
	XMLName   xml.Name    `xml:"DescribeRegionsResponse"`
	Xmlns     string      `xml:"xmlns,attr"`
	RequestID string      `xml:"requestId"`
	Regions   []regionXML `xml:"regionInfo>item"`
}

type vcpuXML struct {
	DefaultVCpus          int `xml:"defaultVCpus"`
	DefaultCores          int `xml:"defaultCores"`
	DefaultThreadsPerCore int `xml:"defaultThreadsPerCore"`
}

type processorXML struct {
	SupportedArchitectures []string `xml:"supportedArchitectures>item"`
	SustainedClockSpeed    float64  `xml:"sustainedClockSpeedInGhz"`
	Manufacturer           string   `xml:"manufacturer"`
}

type memoryXML struct {
	SizeInMiB int64 `xml:"sizeInMiB"`
}

type networkXML struct {
	NetworkPerformance        string `xml:"networkPerformance"`
	MaximumNetworkInterfaces  int    `xml:"maximumNetworkInterfaces"`
	Ipv4AddressesPerInterface int    `xml:"ipv4AddressesPerInterface"`
	Ipv6Supported             bool   `xml:"ipv6Supported"`
	EnaSupport                string `xml:"enaSupport"`
}

type ebsInfoXML struct {
	EbsOptimizedSupport string `xml:"ebsOptimizedSupport"`
	EncryptionSupport   string `xml:"encryptionSupport"`
	NvmeSupport         string `xml:"nvmeSupport"`
}

type instanceTypeXML struct {
	InstanceType                  string       `xml:"instanceType"`
	CurrentGeneration             bool         `xml:"currentGeneration"`
	FreeTierEligible              bool         `xml:"freeTierEligible"`
	SupportedUsageClasses         []string     `xml:"supportedUsageClasses>item"`
	SupportedRootDeviceTypes      []string     `xml:"supportedRootDeviceTypes>item"`
	SupportedVirtualizationTypes  []string     `xml:"supportedVirtualizationTypes>item"`
	BareMetal                     bool         `xml:"bareMetal"`
	Hypervisor                    string       `xml:"hypervisor"`
	ProcessorInfo                 processorXML `xml:"processorInfo"`
	VCpuInfo                      vcpuXML      `xml:"vCpuInfo"`
	MemoryInfo                    memoryXML    `xml:"memoryInfo"`
	InstanceStorageSupported      bool         `xml:"instanceStorageSupported"`
	EbsInfo                       ebsInfoXML   `xml:"ebsInfo"`
	NetworkInfo                   networkXML   `xml:"networkInfo"`
	BurstablePerformanceSupported bool         `xml:"burstablePerformanceSupported"`
	SupportedBootModes            []string     `xml:"supportedBootModes>item"`
}

type describeInstanceTypesResponse struct {
	XMLName   xml.Name          `xml:"DescribeInstanceTypesResponse"`
	Xmlns     string            `xml:"xmlns,attr"`
	RequestID string            `xml:"requestId"`
	Types     []instanceTypeXML `xml:"instanceTypeSet>item"`
	NextToken string            `xml:"nextToken,omitempty"`
}

type offeringXML struct {
	InstanceType string `xml:"instanceType"`
	LocationType string `xml:"locationType"`
	Location     string `xml:"location"`
}

type describeOfferingsResponse struct {
	XMLName   xml.Name      `xml:"DescribeInstanceTypeOfferingsResponse"`
	Xmlns     string        `xml:"xmlns,attr"`
	RequestID string        `xml:"requestId"`
	Offerings []offeringXML `xml:"instanceTypeOfferingSet>item"`
	NextToken string        `xml:"nextToken,omitempty"`
}

// catalogOp maps the catalogue's actions to their model operation.
func catalogOp(action string) (simcloud.Op, bool) {
	switch action {
	case "DescribeRegions", "DescribeInstanceTypes", "DescribeInstanceTypeOfferings":
		return simcloud.OpCatalog, true
	}
	return "", false
}

// runCatalog runs a catalogue action; ok is false for another action.
func (c *call) runCatalog(action string) (e *apiError, ok bool) {
	switch action {
	case "DescribeRegions":
		return c.describeRegions(), true
	case "DescribeInstanceTypes":
		return c.describeInstanceTypes(), true
	case "DescribeInstanceTypeOfferings":
		return c.describeOfferings(), true
	}
	return nil, false
}

func (c *call) describeRegions() *apiError {
	names := members(c.form, "RegionName")
	all := c.form.Get("AllRegions") == "true"
	resp := describeRegionsResponse{Xmlns: xmlns, RequestID: c.requestID(), Regions: []regionXML{}}
	add := func(name, status string) {
		if len(names) > 0 && !slices.Contains(names, name) {
			return
		}
		for _, f := range filters(c.form) {
			var v string
			switch f.name {
			case "region-name":
				v = name
			case "opt-in-status":
				v = status
			case "endpoint":
				v = "ec2." + name + ".amazonaws.com"
			}
			if !anyGlob(f.values, v) {
				return
			}
		}
		resp.Regions = append(resp.Regions, regionXML{RegionName: name, RegionEndpoint: "ec2." + name + ".amazonaws.com", OptInStatus: status})
	}
	for _, f := range filters(c.form) {
		if !slices.Contains([]string{"region-name", "opt-in-status", "endpoint"}, f.name) {
			return invalidValue("The filter '%s' is invalid", f.name)
		}
	}
	for _, r := range c.h.cloud.Options().Regions {
		add(r, "opt-in-not-required")
	}
	if all {
		for _, r := range OptInRegions {
			if !slices.Contains(c.h.cloud.Options().Regions, r) {
				add(r, "not-opted-in")
			}
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(resp.Regions, func(r regionXML) bool { return r.RegionName == n }) && !slices.Contains(OptInRegions, n) {
			return invalidValue("Invalid region: %s", n)
		}
	}
	writeXML(c.w, resp)
	return nil
}

// pageOf returns the page of names starting after the NextToken's
// position (its index), limit at most (def when MaxResults is not given),
// and the next token.
func (c *call) pageOf(names []string, lo, hi, def int) ([]string, string, *apiError) {
	limit := def
	if s := c.form.Get("MaxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return nil, "", invalidValue("Value ( %s ) for parameter maxResults is invalid. Expecting a value between %d and %d.", s, lo, hi)
		}
		limit = n
	}
	start := 0
	if tok := c.form.Get("NextToken"); tok != "" {
		_, after, e := paging(urlValues("NextToken", tok), nil)
		if e != nil {
			return nil, "", e
		}
		start = int(after)
		if start < 0 || start > len(names) {
			return nil, "", badRequest("InvalidParameterValue", "Invalid NextToken")
		}
	}
	end := min(start+limit, len(names))
	next := ""
	if end < len(names) {
		next = nextToken(int64(end))
	}
	return names[start:end], next, nil
}

func (c *call) describeInstanceTypes() *apiError {
	sizes := c.h.cloud.Options().Sizes
	asked := members(c.form, "InstanceType")
	if len(asked) > 0 && c.form.Has("MaxResults") {
		return badRequest("InvalidParameterCombination", "The parameter instanceTypes cannot be used with the parameter maxResults")
	}
	for _, t := range asked {
		if _, ok := sizes[t]; !ok {
			return badRequest("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", t)
		}
	}
	names := make([]string, 0, len(sizes))
	for n := range sizes {
		if len(asked) == 0 || slices.Contains(asked, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	fs := filters(c.form)
	for _, f := range fs {
		if !slices.Contains([]string{"instance-type", "processor-info.supported-architecture", "current-generation"}, f.name) {
			return invalidValue("The filter '%s' is invalid", f.name)
		}
	}
	names = slices.DeleteFunc(names, func(n string) bool {
		for _, f := range fs {
			v := map[string]string{"instance-type": n, "processor-info.supported-architecture": sizes[n].Arch, "current-generation": "true"}[f.name]
			if !anyGlob(f.values, v) {
				return true
			}
		}
		return false
	})
	page, next, e := c.pageOf(names, 5, 100, 100)
	if e != nil {
		return e
	}
	resp := describeInstanceTypesResponse{Xmlns: xmlns, RequestID: c.requestID(), Types: []instanceTypeXML{}, NextToken: next}
	for _, n := range page {
		resp.Types = append(resp.Types, instanceTypeInfo(n, sizes[n]))
	}
	writeXML(c.w, resp)
	return nil
}

// instanceTypeInfo is DescribeInstanceTypes' entry of a type.
func instanceTypeInfo(name string, s simcloud.Size) instanceTypeXML {
	d, ok := details[name]
	if !ok {
		d = typeDetail{cores: max(s.VCPUs/2, 1), threads: 2, clockGHz: 2.5, manufacturer: "Intel", network: "Up to 10 Gigabit"}
		if s.Arch == "arm64" {
			d.cores, d.threads, d.manufacturer = max(s.VCPUs, 1), 1, "AWS"
		}
	}
	boot := []string{"legacy-bios", "uefi"}
	if s.Arch == "arm64" {
		boot = []string{"uefi"}
	}
	return instanceTypeXML{
		InstanceType: name, CurrentGeneration: true, FreeTierEligible: name == "t3.micro" || name == "t4g.micro",
		SupportedUsageClasses: []string{"on-demand", "spot"}, SupportedRootDeviceTypes: []string{"ebs"},
		SupportedVirtualizationTypes: []string{"hvm"}, Hypervisor: "nitro",
		ProcessorInfo: processorXML{SupportedArchitectures: []string{s.Arch}, SustainedClockSpeed: d.clockGHz, Manufacturer: d.manufacturer},
		VCpuInfo:      vcpuXML{DefaultVCpus: s.VCPUs, DefaultCores: d.cores, DefaultThreadsPerCore: d.threads},
		MemoryInfo:    memoryXML{SizeInMiB: int64(s.MemoryMB)},
		EbsInfo:       ebsInfoXML{EbsOptimizedSupport: "default", EncryptionSupport: "supported", NvmeSupport: "required"},
		NetworkInfo: networkXML{NetworkPerformance: d.network, MaximumNetworkInterfaces: 3, Ipv4AddressesPerInterface: 6,
			Ipv6Supported: true, EnaSupport: "required"},
		BurstablePerformanceSupported: d.burstable, SupportedBootModes: boot,
	}
}

func (c *call) describeOfferings() *apiError {
	switch lt := c.form.Get("LocationType"); lt {
	case "", "region":
	case "availability-zone", "availability-zone-id":
		return badRequest("InvalidParameterValue", "The simulated EC2 lists offerings by region only (LocationType region), not %s", lt)
	default:
		return invalidValue("Value (%s) for parameter locationType is invalid.", lt)
	}
	fs := filters(c.form)
	for _, f := range fs {
		if f.name != "instance-type" && f.name != "location" {
			return invalidValue("The filter '%s' is invalid", f.name)
		}
	}
	var names []string
	for n := range c.h.cloud.Options().Sizes {
		names = append(names, n)
	}
	slices.Sort(names)
	names = slices.DeleteFunc(names, func(n string) bool {
		for _, f := range fs {
			v := map[string]string{"instance-type": n, "location": c.region}[f.name]
			if !anyGlob(f.values, v) {
				return true
			}
		}
		return false
	})
	page, next, e := c.pageOf(names, 5, 1000, 1000)
	if e != nil {
		return e
	}
	resp := describeOfferingsResponse{Xmlns: xmlns, RequestID: c.requestID(), Offerings: []offeringXML{}, NextToken: next}
	for _, n := range page {
		resp.Offerings = append(resp.Offerings, offeringXML{InstanceType: n, LocationType: "region", Location: c.region})
	}
	writeXML(c.w, resp)
	return nil
}

// urlValues is a form of one value.
func urlValues(k, v string) map[string][]string { return map[string][]string{k: {v}} }

// regionNames are the names the AWS Price List API gives regions in a
// product's "location" attribute.
var regionNames = map[string]string{
	"us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
	"us-west-2": "US West (Oregon)", "eu-west-1": "EU (Ireland)", "eu-west-2": "EU (London)", "eu-west-3": "EU (Paris)",
	"eu-central-1": "EU (Frankfurt)", "eu-north-1": "EU (Stockholm)", "ap-southeast-1": "Asia Pacific (Singapore)",
	"ap-southeast-2": "Asia Pacific (Sydney)", "ap-northeast-1": "Asia Pacific (Tokyo)", "ap-south-1": "Asia Pacific (Mumbai)",
	"ca-central-1": "Canada (Central)", "sa-east-1": "South America (Sao Paulo)", "ap-east-1": "Asia Pacific (Hong Kong)",
	"me-south-1": "Middle East (Bahrain)", "af-south-1": "Africa (Cape Town)",
}

// usagePrefix is the Price List API's usage type prefix of a region
// ("USW2-BoxUsage:t3.micro"; none for us-east-1).
func usagePrefix(region string) string {
	p := map[string]string{"us-east-1": "", "us-east-2": "USE2-", "us-west-1": "USW1-", "us-west-2": "USW2-",
		"eu-west-1": "EU-", "eu-west-2": "EUW2-", "eu-west-3": "EUW3-", "eu-central-1": "EUC1-", "eu-north-1": "EUN1-",
		"ap-southeast-1": "APS1-", "ap-southeast-2": "APS2-", "ap-northeast-1": "APN1-"}[region]
	if _, ok := regionNames[region]; !ok {
		return strings.ToUpper(strings.ReplaceAll(region, "-", "")) + "-"
	}
	return p
}
