package provider

// What the external tests reach of the package's insides.

// Limits are the cloud's rules a test validates a request against.
type Limits struct {
	MaxUserDataBytes int
	UserDataUTF8     bool
}

// ValidateWith validates req under l.
func (req *InstanceRequest) ValidateWith(l Limits) error {
	return req.validate(rules{maxUserData: l.MaxUserDataBytes, userDataUTF8: l.UserDataUTF8})
}

// WrapErr is wrapErr.
var WrapErr = wrapErr
