# The lab's web service (trellis lab: on app1). The demo app runs as the unix user trellis-web
# and listens on 127.0.0.1:8081. In transparent mode its sidecar captures trellis-web's
# connections to any mesh service (name.service.consul or virtual IP), so web needs no
# upstreams list.
service {
  name = "web"
  port = 8081
  connect {
    sidecar_service {
      port = 21000
      proxy {
        mode = "transparent"
        transparent_proxy {
          capture_user = "trellis-web"
          redirect_dns = true
        }
      }
    }
  }
  check {
    id       = "web-http"
    name     = "web answers HTTP"
    http     = "http://127.0.0.1:8081/"
    interval = "5s"
    timeout  = "2s"
  }
}
