// Command minio-admin creates a MinIO user bound to a canned policy. The integration
// tests use it to prove the agent works with exactly the seed's IAM policies, which the
// S3 API alone cannot set up.
//
// Usage: minio-admin add-user ENDPOINT_URL USER SECRET POLICY_FILE
// The root credentials come from MINIO_ROOT_USER and MINIO_ROOT_PASSWORD.
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/minio/madmin-go/v3"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "minio-admin:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 5 || args[0] != "add-user" {
		return fmt.Errorf("usage: minio-admin add-user ENDPOINT_URL USER SECRET POLICY_FILE")
	}
	endpoint, user, secret, policyFile := args[1], args[2], args[3], args[4]
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint: %w", err)
	}
	policy, err := os.ReadFile(policyFile)
	if err != nil {
		return err
	}
	client, err := madmin.New(u.Host, os.Getenv("MINIO_ROOT_USER"), os.Getenv("MINIO_ROOT_PASSWORD"), u.Scheme == "https")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	policyName := "policy-" + user
	if err := client.AddCannedPolicy(ctx, policyName, policy); err != nil {
		return fmt.Errorf("add policy: %w", err)
	}
	if err := client.AddUser(ctx, user, secret); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	if _, err := client.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{policyName}, User: user}); err != nil {
		return fmt.Errorf("attach policy: %w", err)
	}
	return nil
}
