# The pathupdate binary in a small image. Build: docker build -t pathupdate .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/pathupdate ./cmd/pathupdate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pathupdate /usr/local/bin/pathupdate
ENTRYPOINT ["/usr/local/bin/pathupdate"]
CMD ["worker"]
