package aws

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	ptypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"

	"github.com/spuffgo/spuff/provider/driver"
)

var _ driver.Cataloger = (*drv)(nil)

// PricingRegion is the region of the AWS Price List API endpoint the
// driver asks (api.pricing.us-east-1.amazonaws.com): it serves the prices
// of every region.
const PricingRegion = "us-east-1"

// Catalog reads the account's regions (DescribeRegions with AllRegions:
// a region the account has not opted in to is unavailable), the instance
// types (DescribeInstanceTypes, every page, in the default region, then by
// name in a region offering those it lacks) and where each is offered
// (DescribeInstanceTypeOfferings by region, every page, in every available
// region). Prices are the Linux, shared-tenancy, on-demand prices of the
// AWS Price List API (GetProducts, every page), in US dollars, for the
// regions the Provider covers (the default region, Config.Regions,
// WithRegions and those it launched in): reading them for every region
// would take thousands of calls. Another region's prices, and every price
// when the credentials may not call pricing:GetProducts, are unknown.
func (d *drv) Catalog(ctx context.Context) (*driver.Catalog, error) {
	if d.region == "" {
		return nil, noRegion()
	}
	home := d.client(d.region)
	out, err := home.DescribeRegions(ctx, &ec2.DescribeRegionsInput{AllRegions: awssdk.Bool(true)}, d.callOpt)
	if err != nil {
		return nil, classify(err)
	}
	c := &driver.Catalog{}
	var available []string
	for _, r := range out.Regions {
		name := awssdk.ToString(r.RegionName)
		ok := awssdk.ToString(r.OptInStatus) != "not-opted-in"
		c.Regions = append(c.Regions, driver.Region{Name: name, Available: ok})
		if ok {
			available = append(available, name)
		}
	}
	slices.Sort(available)

	specs := map[string]types.InstanceTypeInfo{}
	pages := ec2.NewDescribeInstanceTypesPaginator(home, &ec2.DescribeInstanceTypesInput{MaxResults: awssdk.Int32(100)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, d.callOpt)
		if err != nil {
			return nil, classify(err)
		}
		for _, t := range page.InstanceTypes {
			specs[string(t.InstanceType)] = t
		}
	}
	offered := map[string][]string{} // type -> regions
	for _, region := range available {
		pages := ec2.NewDescribeInstanceTypeOfferingsPaginator(d.client(region), &ec2.DescribeInstanceTypeOfferingsInput{
			LocationType: types.LocationTypeRegion, MaxResults: awssdk.Int32(1000)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx, d.callOpt)
			if err != nil {
				return nil, classify(err)
			}
			for _, o := range page.InstanceTypeOfferings {
				t := string(o.InstanceType)
				offered[t] = append(offered[t], region)
			}
		}
	}
	if err := d.describeMissing(ctx, specs, offered); err != nil {
		return nil, err
	}

	prices, names, note, err := d.prices(ctx, slices.DeleteFunc(d.regions(), func(r string) bool { return !slices.Contains(available, r) }))
	if err != nil {
		return nil, err
	}
	if note != "" {
		c.Notes = append(c.Notes, note)
	}
	for i := range c.Regions {
		c.Regions[i].Description = names[c.Regions[i].Name]
	}
	for name, info := range specs {
		s := instanceTypeSize(info)
		s.Regions = offered[name]
		for _, r := range s.Regions {
			if p, ok := prices[r][name]; ok {
				if s.Prices == nil {
					s.Prices = map[string]driver.Price{}
				}
				s.Prices[r] = driver.Price{Hourly: p, Currency: "USD"}
			}
		}
		c.Sizes = append(c.Sizes, s)
	}
	return c, nil
}

// describeMissing describes the offered types the default region does
// not (in a region that offers them, 100 a call).
func (d *drv) describeMissing(ctx context.Context, specs map[string]types.InstanceTypeInfo, offered map[string][]string) error {
	byRegion := map[string][]types.InstanceType{}
	for t, regions := range offered {
		if _, ok := specs[t]; !ok {
			byRegion[regions[0]] = append(byRegion[regions[0]], types.InstanceType(t))
		}
	}
	for region, missing := range byRegion {
		slices.Sort(missing)
		for batch := range slices.Chunk(missing, 100) {
			out, err := d.client(region).DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: batch}, d.callOpt)
			if err != nil {
				return classify(err)
			}
			for _, t := range out.InstanceTypes {
				specs[string(t.InstanceType)] = t
			}
		}
	}
	return nil
}

// instanceTypeSize maps an instance type's specifications.
func instanceTypeSize(t types.InstanceTypeInfo) driver.Size {
	s := driver.Size{Name: string(t.InstanceType), Regions: []string{}}
	if t.VCpuInfo != nil {
		s.VCPUs = int(awssdk.ToInt32(t.VCpuInfo.DefaultVCpus))
	}
	if t.MemoryInfo != nil {
		s.MemoryMiB = int(awssdk.ToInt64(t.MemoryInfo.SizeInMiB))
	}
	if t.InstanceStorageInfo != nil {
		s.DiskGB = int(awssdk.ToInt64(t.InstanceStorageInfo.TotalSizeInGB))
	}
	if t.ProcessorInfo != nil {
		archs := t.ProcessorInfo.SupportedArchitectures
		switch {
		case slices.Contains(archs, types.ArchitectureTypeX8664):
			s.Arch = driver.ArchX86
		case slices.Contains(archs, types.ArchitectureTypeArm64):
			s.Arch = driver.ArchARM
		case len(archs) > 0:
			s.Arch = string(archs[0]) // i386, x86_64_mac, arm64_mac: none Pick asks for
		}
	}
	return s
}

// pricingClient is the Price List API client, made from the EC2 client's
// options on first use: its credentials and endpoint, the paced HTTP
// client, no SDK retries.
func (d *drv) pricingClient() *pricing.Client {
	d.pricingOnce.Do(func() {
		base := d.base.Options()
		d.pricing = pricing.New(pricing.Options{
			Region: PricingRegion, Credentials: base.Credentials, BaseEndpoint: base.BaseEndpoint,
			HTTPClient: d.hc, Retryer: awssdk.NopRetryer{}, Logger: base.Logger,
		})
	})
	return d.pricing
}

// prices reads the on-demand Linux prices of every instance type in
// regions from the Price List API: by region and type, the regions' names
// as the Price List gives them, and a note when they could not be read
// for want of permission.
func (d *drv) prices(ctx context.Context, regions []string) (map[string]map[string]float64, map[string]string, string, error) {
	out := map[string]map[string]float64{}
	names := map[string]string{}
	client := d.pricingClient()
	term := func(field, value string) ptypes.Filter {
		return ptypes.Filter{Type: ptypes.FilterTypeTermMatch, Field: awssdk.String(field), Value: awssdk.String(value)}
	}
	for _, region := range regions {
		pages := pricing.NewGetProductsPaginator(client, &pricing.GetProductsInput{
			ServiceCode: awssdk.String("AmazonEC2"), FormatVersion: awssdk.String("aws_v1"), MaxResults: awssdk.Int32(100),
			Filters: []ptypes.Filter{
				term("regionCode", region), term("operatingSystem", "Linux"), term("tenancy", "Shared"),
				term("preInstalledSw", "NA"), term("capacitystatus", "Used"), term("licenseModel", "No License required"),
			},
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				err = classify(err)
				if driver.KindOf(err) == driver.KindAuthentication {
					return nil, nil, "prices unknown: the credentials may not read the AWS Price List API (pricing:GetProducts): " + err.Error(), nil
				}
				return nil, nil, "", err
			}
			for _, doc := range page.PriceList {
				t, loc, usd, ok := onDemand(doc)
				if !ok {
					continue
				}
				if out[region] == nil {
					out[region] = map[string]float64{}
				}
				out[region][t] = usd
				names[region] = loc
			}
		}
	}
	return out, names, "", nil
}

// priceDoc is what spuff reads of a Price List document (format aws_v1).
type priceDoc struct {
	Product struct {
		Attributes struct {
			InstanceType string `json:"instanceType"`
			Location     string `json:"location"`
		} `json:"attributes"`
	} `json:"product"`
	Terms struct {
		OnDemand map[string]struct {
			PriceDimensions map[string]struct {
				Unit         string            `json:"unit"`
				PricePerUnit map[string]string `json:"pricePerUnit"`
			} `json:"priceDimensions"`
		} `json:"OnDemand"`
	} `json:"terms"`
}

// onDemand reads an instance type's hourly on-demand price in US dollars
// from a Price List document, and its region's name.
func onDemand(doc string) (instanceType, location string, usd float64, ok bool) {
	var p priceDoc
	if json.Unmarshal([]byte(doc), &p) != nil || p.Product.Attributes.InstanceType == "" {
		return "", "", 0, false
	}
	for _, term := range p.Terms.OnDemand {
		for _, dim := range term.PriceDimensions {
			if dim.Unit != "Hrs" {
				continue
			}
			v, err := strconv.ParseFloat(dim.PricePerUnit["USD"], 64)
			if err == nil && v >= 0 {
				return p.Product.Attributes.InstanceType, p.Product.Attributes.Location, v, true
			}
		}
	}
	return "", "", 0, false
}

// pricingState is the driver's Price List client, made once.
type pricingState struct {
	pricingOnce sync.Once
	pricing     *pricing.Client
}
