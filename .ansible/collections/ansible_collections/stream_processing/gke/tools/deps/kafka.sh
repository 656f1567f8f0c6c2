#!/usr/bin/env bash
# Downloads the Apache Kafka broker jars (KAFKA_VERSION, Scala KAFKA_SCALA_VERSION) with Maven into
# the cache and prints the Kafka home directory (which holds libs/) on the last line of stdout.
# Progress and errors go to stderr. A complete download for the same versions is reused.
#
# Usage: tools/deps/kafka.sh
# Cache:  ${SPG_CACHE_DIR:-$HOME/.cache/stream-processing-gke}/kafka-<scala>-<version>/libs/
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache_dir="${SPG_CACHE_DIR:-$HOME/.cache/stream-processing-gke}"

die() {
    printf 'kafka.sh: error: %s\n' "$*" >&2
    exit 1
}
log() { printf 'kafka.sh: %s\n' "$*" >&2; }

[[ $# -eq 0 ]] || die "no arguments expected (versions come from tools/versions.env)"

# shellcheck source=tools/versions.env
source "$repo_root/tools/versions.env"
: "${KAFKA_VERSION:?missing in tools/versions.env}" "${KAFKA_SCALA_VERSION:?missing in tools/versions.env}"
: "${MAVEN_DEPENDENCY_PLUGIN_VERSION:?missing in tools/versions.env}" "${LOG4J_VERSION:?missing in tools/versions.env}"

kafka_home="$cache_dir/kafka-$KAFKA_SCALA_VERSION-$KAFKA_VERSION"
stamp="$kafka_home/.complete"

# kafka_<scala> depends on the broker's modules; the log4j 2 backend is what Kafka's own
# distribution ships for the broker's logging, so it is added explicitly.
pom="$(cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>stream-processing.gke.test-deps</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$KAFKA_SCALA_VERSION</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
)"

# The stamp changes with the pom, so any version or dependency change downloads again.
want="$(sha256sum <<<"$pom" | cut -c1-16)"

if [[ -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
    printf '%s\n' "$kafka_home"
    exit 0
fi

command -v java >/dev/null || die "java is not installed (Kafka $KAFKA_VERSION needs Java 17 or newer)"
command -v mvn >/dev/null || die "mvn is not installed (apt-get install -y maven)"

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.kafka.lock"
if ! flock -n 9; then
    log "another kafka.sh is downloading Kafka; waiting for it"
    flock 9
fi
if [[ -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
    printf '%s\n' "$kafka_home"
    exit 0
fi

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/kafka-download.XXXXXX")"
trap 'rm -rf "$work_dir"' EXIT
printf '%s\n' "$pom" >"$work_dir/pom.xml"


log "downloading Kafka $KAFKA_VERSION (Scala $KAFKA_SCALA_VERSION) with Maven into $kafka_home"
started=$SECONDS
staging="$work_dir/kafka"
if ! mvn --batch-mode --no-transfer-progress -f "$work_dir/pom.xml" \
    -Dmaven.repo.local="$cache_dir/maven-repository" \
    "org.apache.maven.plugins:maven-dependency-plugin:$MAVEN_DEPENDENCY_PLUGIN_VERSION:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$staging/libs" >"$work_dir/mvn.log" 2>&1; then
    grep -E '^\[(ERROR|WARNING)\]' "$work_dir/mvn.log" | tail -n 20 >&2 || tail -n 20 "$work_dir/mvn.log" >&2
    if grep -qiE 'Could not find artifact org\.apache\.kafka' "$work_dir/mvn.log"; then
        die "Kafka $KAFKA_VERSION for Scala $KAFKA_SCALA_VERSION is not on Maven Central; fix KAFKA_VERSION in tools/versions.env"
    fi
    if grep -qiE 'UnknownHost|Connection refused|timed out|transfer failed|Network is unreachable' "$work_dir/mvn.log"; then
        die "Maven Central unreachable while downloading Kafka $KAFKA_VERSION (see the Maven output above)"
    fi
    die "Maven could not download Kafka $KAFKA_VERSION (see the Maven output above)"
fi
compgen -G "$staging/libs/kafka_$KAFKA_SCALA_VERSION-$KAFKA_VERSION.jar" >/dev/null ||
    die "Maven finished but libs/ has no kafka_$KAFKA_SCALA_VERSION-$KAFKA_VERSION.jar"

printf '%s\n' "$want" >"$staging/.complete"
rm -rf "$kafka_home"
mv "$staging" "$kafka_home"
log "downloaded $(find "$kafka_home/libs" -name '*.jar' | wc -l) jars ($(du -sh "$kafka_home/libs" | cut -f1)) in $((SECONDS - started)) s"
printf '%s\n' "$kafka_home"
