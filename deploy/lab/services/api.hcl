# The lab's api service (trellis lab: on app2, app3, ...). The demo app runs as the unix user
# trellis-api and listens on 0.0.0.0:8080; its sidecar captures that user's connections and,
# in transparent mode, connections arriving for port 8080 (sent to the sidecar's TLS port).
service {
  name = "api"
  port = 8080
  connect {
    sidecar_service {
      port = 21000
      proxy {
        mode = "transparent"
        transparent_proxy {
          capture_user = "trellis-api"
          redirect_dns = true
        }
      }
    }
  }
  check {
    id       = "api-http"
    name     = "api answers HTTP"
    http     = "http://127.0.0.1:8080/"
    interval = "5s"
    timeout  = "2s"
  }
}
