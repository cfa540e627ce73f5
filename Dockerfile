# castgate container image: built on Debian, runs as an unprivileged user on a read-only root
# filesystem. Debian 12 ships libssh 0.10.6; Debian 13 (trixie) ships 0.11, which lifts libssh's
# window and read-size limits (see README, Performance):
#   docker build --build-arg DEBIAN=bookworm -t castgate .
#   docker build --build-arg DEBIAN=trixie -t castgate:trixie .
ARG DEBIAN=bookworm

FROM debian:${DEBIAN}-slim AS build
# Behind a TLS-intercepting proxy, hand its CA certificates (PEM) to the build as the optional
# secret extra-ca (docker build --secret id=extra-ca,src=FILE; scripts/build-image.sh does): apt
# and npm here trust them, and being a secret, they are in no layer of any stage.
RUN --mount=type=secret,id=extra-ca \
    if [ -s /run/secrets/extra-ca ]; then ca="-o Acquire::https::CAInfo=/run/secrets/extra-ca"; fi; \
    apt-get $ca update && apt-get $ca install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config ca-certificates \
      libssh-dev libssl-dev nlohmann-json3-dev libsimdjson-dev libboost-program-options-dev \
      doctest-dev libcurl4-openssl-dev libvterm-dev libqrencode-dev libseccomp-dev libisal-dev libzstd-dev npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY common common
COPY asciicast asciicast
COPY oidc oidc
COPY gateway gateway
COPY player player
# asciinema-player, pinned by the lock file, embedded in castgate-player's HTML replay pages.
RUN --mount=type=secret,id=extra-ca \
    if [ -s /run/secrets/extra-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra-ca; fi; \
    cd player/web && npm ci --no-audit --no-fund --loglevel=error
COPY tests tests
# RelWithDebInfo (-O2) is the configuration `make test` tests and `make bench` measures. Warnings are
# errors in development and CI; here the compiler may be newer (trixie ships GCC 14), and a new
# warning must not block building the image of an already tested commit.
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCASTGATE_WERROR=OFF \
      -DBUILD_TESTING=OFF \
    && cmake --build build \
    && mkdir -p /out/bin /out/lib \
    && cp build/gateway/castgate build/player/castgate-player /out/bin/ \
    && strip /out/bin/*
# The runtime needs exactly the shared libraries the binaries link, whatever their package names
# are in this Debian release.
RUN for f in /out/bin/*; do ldd "$f"; done | awk '/=> \//{print $3}' | sort -u > /out/libs.txt \
    && grep -v -E '/(libc|libm|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' /out/libs.txt \
       | xargs -I{} cp -L {} /out/lib/

FROM debian:${DEBIAN}-slim
RUN --mount=type=secret,id=extra-ca \
    if [ -s /run/secrets/extra-ca ]; then ca="-o Acquire::https::CAInfo=/run/secrets/extra-ca"; fi; \
    apt-get $ca update && apt-get $ca install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 castgate \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
               --shell /usr/sbin/nologin castgate
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/lib/ /usr/local/lib/castgate/
ENV LD_LIBRARY_PATH=/usr/local/lib/castgate
USER 10001:10001
# SSH for users, HTTP health probes for the orchestrator.
EXPOSE 2222 8080
# Recordings go to stdout (one JSON event per line), diagnostics to stderr.
ENTRYPOINT ["/usr/local/bin/castgate"]
CMD ["--help"]
