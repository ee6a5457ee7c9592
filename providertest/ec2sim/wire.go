package ec2sim

import "encoding/xml"

// The XML shapes of the EC2 Query protocol's answers, with the element names
// aws-sdk-go-v2's ec2query deserializers read. Every list is a wrapper
// element holding <item> elements. They are kept apart from the model
// (simcloud) as hcloud-go keeps its schema types apart.

const xmlns = "http://ec2.amazonaws.com/doc/" + apiVersion + "/"

type tagXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type stateXML struct {
	Code int32  `xml:"code"`
	Name string `xml:"name"`
}

type groupXML struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type placementXML struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type profileXML struct {
	Arn string `xml:"arn"`
	ID  string `xml:"id"`
}

type ebsInstanceXML struct {
	VolumeID            string `xml:"volumeId"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type instanceBDMXML struct {
	DeviceName string         `xml:"deviceName"`
	Ebs        ebsInstanceXML `xml:"ebs"`
}

type reasonXML struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type instanceXML struct {
	InstanceID          string           `xml:"instanceId"`
	ImageID             string           `xml:"imageId"`
	State               stateXML         `xml:"instanceState"`
	PrivateDNSName      string           `xml:"privateDnsName"`
	DNSName             string           `xml:"dnsName"`
	Reason              string           `xml:"reason"`
	KeyName             string           `xml:"keyName,omitempty"`
	AmiLaunchIndex      int32            `xml:"amiLaunchIndex"`
	InstanceType        string           `xml:"instanceType"`
	LaunchTime          string           `xml:"launchTime"`
	Placement           placementXML     `xml:"placement"`
	Monitoring          stateNameXML     `xml:"monitoring"`
	SubnetID            string           `xml:"subnetId,omitempty"`
	VpcID               string           `xml:"vpcId,omitempty"`
	PrivateIPAddress    string           `xml:"privateIpAddress,omitempty"`
	IPAddress           string           `xml:"ipAddress,omitempty"`
	Groups              []groupXML       `xml:"groupSet>item"`
	StateReason         *reasonXML       `xml:"stateReason,omitempty"`
	Architecture        string           `xml:"architecture"`
	RootDeviceType      string           `xml:"rootDeviceType"`
	RootDeviceName      string           `xml:"rootDeviceName"`
	BlockDeviceMappings []instanceBDMXML `xml:"blockDeviceMapping>item"`
	VirtualizationType  string           `xml:"virtualizationType"`
	ClientToken         string           `xml:"clientToken,omitempty"`
	Tags                []tagXML         `xml:"tagSet>item"`
	Hypervisor          string           `xml:"hypervisor"`
	IamInstanceProfile  *profileXML      `xml:"iamInstanceProfile,omitempty"`
	EbsOptimized        bool             `xml:"ebsOptimized"`
	EnaSupport          bool             `xml:"enaSupport"`
	PlatformDetails     string           `xml:"platformDetails"`
	UsageOperation      string           `xml:"usageOperation"`
}

type stateNameXML struct {
	State string `xml:"state"`
}

type reservationXML struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []groupXML    `xml:"groupSet>item"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

type runInstancesResponse struct {
	XMLName   xml.Name `xml:"RunInstancesResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	reservationXML
}

type describeInstancesResponse struct {
	XMLName      xml.Name         `xml:"DescribeInstancesResponse"`
	Xmlns        string           `xml:"xmlns,attr"`
	RequestID    string           `xml:"requestId"`
	Reservations []reservationXML `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type stateChangeXML struct {
	InstanceID    string   `xml:"instanceId"`
	CurrentState  stateXML `xml:"currentState"`
	PreviousState stateXML `xml:"previousState"`
}

type terminateInstancesResponse struct {
	XMLName   xml.Name         `xml:"TerminateInstancesResponse"`
	Xmlns     string           `xml:"xmlns,attr"`
	RequestID string           `xml:"requestId"`
	Instances []stateChangeXML `xml:"instancesSet>item"`
}

type createImageResponse struct {
	XMLName   xml.Name `xml:"CreateImageResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	ImageID   string   `xml:"imageId"`
}

type ebsXML struct {
	SnapshotID          string `xml:"snapshotId,omitempty"`
	VolumeSize          int32  `xml:"volumeSize"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	VolumeType          string `xml:"volumeType"`
	Encrypted           bool   `xml:"encrypted"`
}

type bdmXML struct {
	DeviceName string `xml:"deviceName"`
	Ebs        ebsXML `xml:"ebs"`
}

type imageXML struct {
	ImageID            string     `xml:"imageId"`
	ImageLocation      string     `xml:"imageLocation"`
	ImageState         string     `xml:"imageState"`
	ImageOwnerID       string     `xml:"imageOwnerId"`
	CreationDate       string     `xml:"creationDate"`
	IsPublic           bool       `xml:"isPublic"`
	Architecture       string     `xml:"architecture"`
	ImageType          string     `xml:"imageType"`
	SourceInstanceID   string     `xml:"sourceInstanceId,omitempty"`
	Name               string     `xml:"name"`
	Description        string     `xml:"description,omitempty"`
	RootDeviceType     string     `xml:"rootDeviceType"`
	RootDeviceName     string     `xml:"rootDeviceName"`
	BlockDeviceMapping []bdmXML   `xml:"blockDeviceMapping>item"`
	VirtualizationType string     `xml:"virtualizationType"`
	Tags               []tagXML   `xml:"tagSet>item"`
	Hypervisor         string     `xml:"hypervisor"`
	EnaSupport         bool       `xml:"enaSupport"`
	PlatformDetails    string     `xml:"platformDetails"`
	UsageOperation     string     `xml:"usageOperation"`
	BootMode           string     `xml:"bootMode,omitempty"`
	StateReason        *reasonXML `xml:"stateReason,omitempty"`
}

type describeImagesResponse struct {
	XMLName   xml.Name   `xml:"DescribeImagesResponse"`
	Xmlns     string     `xml:"xmlns,attr"`
	RequestID string     `xml:"requestId"`
	Images    []imageXML `xml:"imagesSet>item"`
	NextToken string     `xml:"nextToken,omitempty"`
}

type deleteSnapshotResultXML struct {
	SnapshotID string `xml:"snapshotId"`
	ReturnCode string `xml:"returnCode"`
}

type deregisterImageResponse struct {
	XMLName   xml.Name                  `xml:"DeregisterImageResponse"`
	Xmlns     string                    `xml:"xmlns,attr"`
	RequestID string                    `xml:"requestId"`
	Return    bool                      `xml:"return"`
	Results   []deleteSnapshotResultXML `xml:"deleteSnapshotResultSet>item"`
}

type returnResponse struct {
	XMLName   xml.Name
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
	Return    bool   `xml:"return"`
}

type snapshotXML struct {
	SnapshotID  string   `xml:"snapshotId"`
	VolumeID    string   `xml:"volumeId"`
	Status      string   `xml:"status"`
	StartTime   string   `xml:"startTime"`
	Progress    string   `xml:"progress"`
	OwnerID     string   `xml:"ownerId"`
	VolumeSize  int32    `xml:"volumeSize"`
	Description string   `xml:"description"`
	Encrypted   bool     `xml:"encrypted"`
	StorageTier string   `xml:"storageTier"`
	Tags        []tagXML `xml:"tagSet>item"`
}

type describeSnapshotsResponse struct {
	XMLName   xml.Name      `xml:"DescribeSnapshotsResponse"`
	Xmlns     string        `xml:"xmlns,attr"`
	RequestID string        `xml:"requestId"`
	Snapshots []snapshotXML `xml:"snapshotSet>item"`
	NextToken string        `xml:"nextToken,omitempty"`
}

type keyPairXML struct {
	KeyPairID      string   `xml:"keyPairId"`
	KeyName        string   `xml:"keyName"`
	KeyFingerprint string   `xml:"keyFingerprint"`
	KeyType        string   `xml:"keyType"`
	PublicKey      string   `xml:"publicKey,omitempty"`
	CreateTime     string   `xml:"createTime"`
	Tags           []tagXML `xml:"tagSet>item"`
}

type describeKeyPairsResponse struct {
	XMLName   xml.Name     `xml:"DescribeKeyPairsResponse"`
	Xmlns     string       `xml:"xmlns,attr"`
	RequestID string       `xml:"requestId"`
	Keys      []keyPairXML `xml:"keySet>item"`
}

type errorResponse struct {
	XMLName   xml.Name `xml:"Response"`
	Errors    []errXML `xml:"Errors>Error"`
	RequestID string   `xml:"RequestID"`
}

type errXML struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}
