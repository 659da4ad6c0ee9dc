package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

func newHealthzCmd(c *config) *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "healthz [--url URL]",
		Short: "Exit 0 if the server on this machine answers /healthz (a container's health check)",
		Long: `healthz asks a running server for GET /healthz and exits 0 when it answers 200, 1 otherwise.
Without --url it asks the address the server itself would listen on (SCIMSERVER_ADDR, with
127.0.0.1 for an unspecified host), over HTTPS when SCIMSERVER_TLS_CERT is set. It sends no
token, so it does not verify the certificate: it checks that the process serves, not who it is.
Images without a shell or curl (distroless, scratch) use it as their HEALTHCHECK.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if url == "" {
				u, err := localHealthURL(c.addr, c.tlsCert != "")
				if err != nil {
					return usageError{err}
				}
				url = u
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return usageError{fmt.Errorf("--url: %w", err)}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			res, err := client.Do(req)
			if err != nil {
				return err
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", url, res.Status)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "URL to ask (default: /healthz at SCIMSERVER_ADDR on this machine)")
	return cmd
}

// localHealthURL is the /healthz URL of a server listening on addr on this machine.
func localHealthURL(addr string, useTLS bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	if port == "0" {
		return "", errors.New("the listen address has no fixed port: give --url")
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz", nil
}
