package ec2sim_test

import (
	"context"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	ptypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"

	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// pricingSDK returns a real Price List API client on srv.
func pricingSDK(srv *simcloud.Server, akid string) *pricing.Client {
	return pricing.New(pricing.Options{
		Region: "us-east-1", BaseEndpoint: awssdk.String(srv.URL), Retryer: awssdk.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(akid, "secret", ""), HTTPClient: sdkHTTP{srv.Client()},
	})
}

// TestCatalogActions runs the catalogue's actions with the real SDK:
// regions with their opt-in status, instance types over pages and by
// name, offerings per region, and their errors.
func TestCatalogActions(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, simcloud.Options{})
	ctx := context.Background()
	c := sdk(t, srv, "us-east-1")

	regions, err := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{AllRegions: awssdk.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, r := range regions.Regions {
		status[awssdk.ToString(r.RegionName)] = awssdk.ToString(r.OptInStatus)
	}
	if status["eu-west-1"] != "opt-in-not-required" || status["ap-east-1"] != "not-opted-in" || len(status) != len(ec2sim.Regions)+len(ec2sim.OptInRegions) {
		t.Errorf("regions: %v", status)
	}
	enabled, _ := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if len(enabled.Regions) != len(ec2sim.Regions) {
		t.Errorf("without AllRegions: %d regions, want the %d enabled", len(enabled.Regions), len(ec2sim.Regions))
	}

	var names []string
	pages := ec2.NewDescribeInstanceTypesPaginator(c, &ec2.DescribeInstanceTypesInput{MaxResults: awssdk.Int32(5)})
	calls := 0
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		for _, it := range page.InstanceTypes {
			names = append(names, string(it.InstanceType))
			if it.VCpuInfo == nil || it.MemoryInfo == nil || it.ProcessorInfo == nil || len(it.ProcessorInfo.SupportedArchitectures) != 1 {
				t.Errorf("%s: incomplete %+v", it.InstanceType, it)
			}
		}
	}
	if len(names) != len(ec2sim.Sizes) || calls != 2 {
		t.Errorf("instance types %v in %d pages, want %d in 2", names, calls, len(ec2sim.Sizes))
	}
	one, err := c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m7g.large"}})
	if err != nil || len(one.InstanceTypes) != 1 || one.InstanceTypes[0].ProcessorInfo.SupportedArchitectures[0] != types.ArchitectureTypeArm64 ||
		awssdk.ToInt64(one.InstanceTypes[0].MemoryInfo.SizeInMiB) != 8192 {
		t.Errorf("m7g.large: %+v, %v", one, err)
	}
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"zz.huge"}})
	wantCode(t, err, "InvalidInstanceType", 400)
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{MaxResults: awssdk.Int32(101)})
	wantCode(t, err, "InvalidParameterValue", 400)

	offers, err := sdk(t, srv, "eu-west-1").DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{LocationType: types.LocationTypeRegion})
	if err != nil || len(offers.InstanceTypeOfferings) != len(ec2sim.Sizes) || awssdk.ToString(offers.InstanceTypeOfferings[0].Location) != "eu-west-1" {
		t.Errorf("offerings in eu-west-1: %+v, %v", offers, err)
	}
}

// TestGetProducts runs the Price List API with the real SDK: price-list
// documents filtered by region and attributes, over pages, and its
// errors.
func TestGetProducts(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, simcloud.Options{})
	ctx := context.Background()
	p := pricingSDK(srv, srv.Cloud.Token())
	term := func(f, v string) ptypes.Filter {
		return ptypes.Filter{Type: ptypes.FilterTypeTermMatch, Field: awssdk.String(f), Value: awssdk.String(v)}
	}
	var docs []string
	pages := pricing.NewGetProductsPaginator(p, &pricing.GetProductsInput{ServiceCode: awssdk.String("AmazonEC2"), MaxResults: awssdk.Int32(3),
		Filters: []ptypes.Filter{term("regionCode", "us-east-1"), term("operatingSystem", "Linux")}})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, page.PriceList...)
	}
	if want := len(ec2sim.OnDemandPrices()["us-east-1"]); len(docs) != want {
		t.Fatalf("%d products in us-east-1, want %d", len(docs), want)
	}
	found := false
	for _, d := range docs {
		if strings.Contains(d, `"instanceType":"t3.micro"`) {
			found = strings.Contains(d, `"USD":"0.0104000000"`) && strings.Contains(d, `"unit":"Hrs"`)
		}
	}
	if !found {
		t.Errorf("t3.micro's on-demand price is not $0.0104 an hour in %q", docs)
	}
	win, err := p.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: awssdk.String("AmazonEC2"), Filters: []ptypes.Filter{term("operatingSystem", "Windows")}})
	if err != nil || len(win.PriceList) != 0 {
		t.Errorf("Windows products: %v, %v; the simulated list has Linux ones only", win, err)
	}
	_, err = pricingSDK(srv, "AKIAUNKNOWN").GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: awssdk.String("AmazonEC2")})
	wantCode(t, err, "UnrecognizedClientException", 400)
	_, err = p.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: awssdk.String("AmazonEC2"), NextToken: awssdk.String("garbage")})
	wantCode(t, err, "InvalidNextTokenException", 400)

	denied := ec2sim.StartWith(t, simcloud.Options{}, ec2sim.WithoutPricingAccess())
	_, err = pricingSDK(denied, denied.Cloud.Token()).GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: awssdk.String("AmazonEC2")})
	wantCode(t, err, "AccessDeniedException", 400)
}
