/**
 * The demo's web service (deploy/lab/services/web.hcl) as the Ansible roles' `trellis_services`
 * variable: a transparent sidecar capturing the `trellis-web` user, DNS redirected. The user
 * itself comes with the application, so a test makes it on the host before the roles run.
 */
export function demoWebService(opts: { check?: boolean } = {}): object {
  return {
    name: 'web',
    port: 8081,
    connect: {
      sidecar_service: {
        port: 21000,
        proxy: {
          mode: 'transparent',
          transparent_proxy: { capture_user: 'trellis-web', redirect_dns: true },
        },
      },
    },
    ...(opts.check
      ? {
          check: {
            id: 'web-http',
            name: 'web answers HTTP',
            http: 'http://127.0.0.1:8081/',
            interval: '5s',
            timeout: '2s',
          },
        }
      : {}),
  };
}
