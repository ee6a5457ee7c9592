package ec2sim

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The AWS Price List API (service "pricing", AWS JSON 1.1): POST with
// X-Amz-Target AWSPriceListService.GetProducts, served on the same
// endpoint as EC2 so that one simulated server answers both clients. It
// returns the Linux, shared-tenancy, on-demand products of the cloud's
// instance types in its regions as the real API does: each a price-list
// JSON document in a string, filtered by TERM_MATCH filters, 100 at most a
// page with NextToken.

// pricingTarget prefixes the X-Amz-Target of the Price List API's calls.
const pricingTarget = "AWSPriceListService."

// OnDemandPrices returns the simulated Price List's hourly on-demand prices in
// US dollars (Linux, shared tenancy), by region and instance type: AWS's
// published prices (aws.amazon.com/ec2/pricing/on-demand, 2024–2025:
// us-east-1 t3.micro $0.0104 and m5.large $0.096 as in
// ctaminian/aws-cost-estimator's pricing.py; us-west-2 the same; eu-west-1
// t3.micro $0.0114 and m5.large $0.107). Only prices that could be checked
// are listed: m7g.large has none in eu-west-1 and eu-central-1, whose
// catalogue entries then report an unknown price, as they would where the
// Price List API has no product.
func OnDemandPrices() map[string]map[string]string {
	return map[string]map[string]string{
		"us-east-1": {"t3.micro": "0.0104", "t3.small": "0.0208", "t3.medium": "0.0416", "m5.large": "0.096",
			"t4g.micro": "0.0084", "t4g.small": "0.0168", "m7g.large": "0.0816"},
		"us-west-2": {"t3.micro": "0.0104", "t3.small": "0.0208", "t3.medium": "0.0416", "m5.large": "0.096",
			"t4g.micro": "0.0084", "t4g.small": "0.0168", "m7g.large": "0.0816"},
		"eu-west-1": {"t3.micro": "0.0114", "t3.small": "0.0228", "t3.medium": "0.0456", "m5.large": "0.107",
			"t4g.micro": "0.0092", "t4g.small": "0.0184"},
		"eu-central-1": {"t3.micro": "0.012", "t3.small": "0.024", "t3.medium": "0.048", "m5.large": "0.115",
			"t4g.micro": "0.0096", "t4g.small": "0.0192"},
	}
}

// WithoutPricingAccess makes the Price List API answer every call with
// AccessDeniedException, as it does to credentials without the
// pricing:GetProducts permission (EC2 keeps answering).
func WithoutPricingAccess() HandlerOption {
	return func(c *handlerConfig) { c.denyPricing = true }
}

// isPricing reports whether r is a Price List API call.
func isPricing(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), pricingTarget)
}

// pricingDialect writes errors as an AWS JSON 1.1 service does.
type pricingDialect struct{}

func (pricingDialect) WriteError(w http.ResponseWriter, _ *http.Request, err *simcloud.Error) {
	switch err.Code {
	case simcloud.CodeUnauthorized:
		writeJSONError(w, http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
	case simcloud.CodeRateLimited:
		writeJSONError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
	case simcloud.CodeInternal, simcloud.CodeBadGateway:
		writeJSONError(w, http.StatusInternalServerError, "InternalErrorException", "An internal error occurred")
	case simcloud.CodeUnavailable:
		writeJSONError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "Service unavailable")
	default:
		writeJSONError(w, http.StatusBadRequest, "InvalidParameterException", err.Message)
	}
}

func (pricingDialect) RateHeaders(http.Header, []simcloud.WindowState) {}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code+":")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	_, _ = w.Write(b)
}

// pricingCredential returns the access key ID of a request signed for
// the pricing service, or "".
func pricingCredential(r *http.Request) string {
	h := r.Header.Get("Authorization")
	i := strings.Index(h, "Credential=")
	if i < 0 {
		return ""
	}
	scope := h[i+len("Credential="):]
	if j := strings.IndexAny(scope, ", "); j >= 0 {
		scope = scope[:j]
	}
	parts := strings.Split(scope, "/")
	if len(parts) != 5 || parts[3] != "pricing" {
		return ""
	}
	return parts[0]
}

type getProductsInput struct {
	ServiceCode   string `json:"ServiceCode"`
	FormatVersion string `json:"FormatVersion"`
	NextToken     string `json:"NextToken"`
	MaxResults    *int   `json:"MaxResults"`
	Filters       []struct {
		Type  string `json:"Type"`
		Field string `json:"Field"`
		Value string `json:"Value"`
	} `json:"Filters"`
}

// servePricing answers a Price List API call.
func (h *handler) servePricing(w http.ResponseWriter, r *http.Request, reqID string) {
	w.Header().Set("X-Amzn-Requestid", reqID)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "SerializationException", "the request body could not be read")
		return
	}
	call := simcloud.Call{Op: simcloud.OpCatalog, Credential: pricingCredential(r), Scope: "pricing"}
	h.cloud.ServeCall(w, r, pricingDialect{}, call, func(w http.ResponseWriter) {
		w.Header().Set("X-Amzn-Requestid", reqID)
		if h.cfg.denyPricing {
			writeJSONError(w, http.StatusBadRequest, "AccessDeniedException",
				"User is not authorized to perform: pricing:GetProducts because no identity-based policy allows the pricing:GetProducts action")
			return
		}
		switch op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), pricingTarget); op {
		case "GetProducts":
			h.getProducts(w, body)
		default:
			writeJSONError(w, http.StatusBadRequest, "UnknownOperationException", "The simulated Price List API serves GetProducts, not "+op)
		}
	})
}

func (h *handler) getProducts(w http.ResponseWriter, body []byte) {
	var in getProductsInput
	if err := json.Unmarshal(body, &in); err != nil {
		writeJSONError(w, http.StatusBadRequest, "SerializationException", "the request body is not JSON: "+err.Error())
		return
	}
	if in.ServiceCode == "" {
		writeJSONError(w, http.StatusBadRequest, "InvalidParameterException", "Input ServiceCode is required")
		return
	}
	limit := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			writeJSONError(w, http.StatusBadRequest, "InvalidParameterException", "MaxResults must be between 1 and 100")
			return
		}
		limit = *in.MaxResults
	}
	var docs []product
	if in.ServiceCode == "AmazonEC2" {
		docs = h.products()
	}
	docs = slices.DeleteFunc(docs, func(p product) bool {
		for _, f := range in.Filters {
			if f.Type != "TERM_MATCH" && f.Type != "" {
				return true
			}
			if !strings.EqualFold(p.Product.Attributes[f.Field], f.Value) {
				return true
			}
		}
		return false
	})
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, "pricing-after:"))
		if err != nil || !strings.HasPrefix(in.NextToken, "pricing-after:") || n < 0 || n > len(docs) {
			writeJSONError(w, http.StatusBadRequest, "InvalidNextTokenException", "The next token is invalid")
			return
		}
		start = n
	}
	end := min(start+limit, len(docs))
	out := struct {
		FormatVersion string   `json:"FormatVersion"`
		NextToken     string   `json:"NextToken,omitempty"`
		PriceList     []string `json:"PriceList"`
	}{FormatVersion: "aws_v1", PriceList: []string{}}
	if end < len(docs) {
		out.NextToken = "pricing-after:" + strconv.Itoa(end)
	}
	for _, d := range docs[start:end] {
		b, _ := json.Marshal(d)
		out.PriceList = append(out.PriceList, string(b))
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	b, _ := json.Marshal(out)
	_, _ = w.Write(b)
}

// product is a price-list document of the Price List API (format aws_v1).
type product struct {
	Product struct {
		ProductFamily string            `json:"productFamily"`
		Attributes    map[string]string `json:"attributes"`
		SKU           string            `json:"sku"`
	} `json:"product"`
	ServiceCode     string                        `json:"serviceCode"`
	Terms           map[string]map[string]offerXJ `json:"terms"`
	Version         string                        `json:"version"`
	PublicationDate string                        `json:"publicationDate"`
}

type offerXJ struct {
	PriceDimensions map[string]dimensionJ `json:"priceDimensions"`
	SKU             string                `json:"sku"`
	EffectiveDate   string                `json:"effectiveDate"`
	OfferTermCode   string                `json:"offerTermCode"`
	TermAttributes  map[string]string     `json:"termAttributes"`
}

type dimensionJ struct {
	Unit         string            `json:"unit"`
	EndRange     string            `json:"endRange"`
	Description  string            `json:"description"`
	AppliesTo    []string          `json:"appliesTo"`
	RateCode     string            `json:"rateCode"`
	BeginRange   string            `json:"beginRange"`
	PricePerUnit map[string]string `json:"pricePerUnit"`
}

// onDemandTerm is the offer term code of on-demand prices.
const onDemandTerm = "JRTCKXETXF"

// products are the price-list documents of the cloud's instance types in
// its regions, where OnDemandPrices has a price, sorted by region and
// type.
func (h *handler) products() []product {
	o := h.cloud.Options()
	prices := OnDemandPrices()
	var out []product
	for _, region := range o.Regions {
		var types []string
		for t := range o.Sizes {
			if _, ok := prices[region][t]; ok {
				types = append(types, t)
			}
		}
		slices.Sort(types)
		for _, t := range types {
			out = append(out, priceProduct(region, t, o.Sizes[t], prices[region][t]))
		}
	}
	return out
}

// priceProduct is the product of instance type t in region at hourly
// price usd.
func priceProduct(region, t string, s simcloud.Size, usd string) product {
	var p product
	sum := sha256.Sum256([]byte(region + "/" + t))
	sku := base32.StdEncoding.EncodeToString(sum[:])[:16]
	p.Product.ProductFamily = "Compute Instance"
	p.Product.SKU = sku
	name := regionNames[region]
	if name == "" {
		name = region
	}
	p.Product.Attributes = map[string]string{
		"servicecode": "AmazonEC2", "instanceType": t, "instanceFamily": "General purpose", "regionCode": region,
		"location": name, "locationType": "AWS Region", "operatingSystem": "Linux", "tenancy": "Shared",
		"preInstalledSw": "NA", "capacitystatus": "Used", "licenseModel": "No License required",
		"vcpu": strconv.Itoa(s.VCPUs), "memory": strconv.FormatFloat(float64(s.MemoryMB)/1024, 'f', -1, 64) + " GiB",
		"storage": "EBS only", "processorArchitecture": "64-bit",
		"usagetype": usagePrefix(region) + "BoxUsage:" + t, "operation": "RunInstances", "servicename": "Amazon Elastic Compute Cloud",
	}
	price, _ := strconv.ParseFloat(usd, 64)
	term := sku + "." + onDemandTerm
	p.ServiceCode = "AmazonEC2"
	p.Terms = map[string]map[string]offerXJ{"OnDemand": {term: {
		SKU: sku, EffectiveDate: "2025-06-01T00:00:00Z", OfferTermCode: onDemandTerm, TermAttributes: map[string]string{},
		PriceDimensions: map[string]dimensionJ{term + ".6YS6EN2CT7": {
			Unit: "Hrs", BeginRange: "0", EndRange: "Inf", AppliesTo: []string{}, RateCode: term + ".6YS6EN2CT7",
			Description:  fmt.Sprintf("$%s per On Demand Linux %s Instance Hour", usd, t),
			PricePerUnit: map[string]string{"USD": strconv.FormatFloat(price, 'f', 10, 64)},
		}},
	}}}
	p.Version = "20250601000000"
	p.PublicationDate = "2025-06-01T00:00:00Z"
	return p
}
