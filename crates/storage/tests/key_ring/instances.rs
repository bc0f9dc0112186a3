//! Several instances on one database, rotation while signing, and revocation racing a refresh.

use super::*;

on_both! {
    two_instances_one_database,
    rotation_while_signing,
    revoke_racing_refresh,
}

// ---------------------------------------------------------------- 3. two instances

async fn two_instances_one_database(env: Env) {
    let store_b = env.second_store().await;

    // Two instances starting at once on an empty database generate once.
    let (a, b) = tokio::join!(
        KeyRing::open(
            env.store.clone(),
            env.kek.clone(),
            small_policy(),
            Arc::new(env.clock.clone())
        ),
        KeyRing::open(
            store_b.clone(),
            env.kek.clone(),
            small_policy(),
            Arc::new(env.clock.clone())
        ),
    );
    let (a, b) = (a.expect("open ring a"), b.expect("open ring b"));
    let gen0 = env.keys().await;
    assert_eq!(gen0.len(), 10, "concurrent opens generated once");
    for alg in all_algs() {
        one(&gen0, alg, KeyState::Active);
        one(&gen0, alg, KeyState::Next);
    }
    a.refresh().await.unwrap();
    b.refresh().await.unwrap();
    let etag0 = a.snapshot().jwks_etag().to_owned();
    assert_eq!(b.snapshot().jwks_etag(), etag0);

    // Both schedules fire at the same moment, on different worker threads.
    env.clock.set(T0 + 101);
    let (ta, tb) = (a.clone(), b.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { ta.tick().await }),
        tokio::spawn(async move { tb.tick().await }),
    );
    let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
    let keys = env.keys().await;
    for alg in all_algs() {
        let by_a = rotation_of(&ra, alg).is_some() as usize;
        let by_b = rotation_of(&rb, alg).is_some() as usize;
        assert_eq!(
            by_a + by_b,
            1,
            "{alg}: exactly one instance rotated ({ra:?} / {rb:?})"
        );
        let active = one(&keys, alg, KeyState::Active);
        let retired = one(&keys, alg, KeyState::Retired);
        one(&keys, alg, KeyState::Next);
        assert_eq!(active.kid, one(&gen0, alg, KeyState::Next).kid);
        assert_eq!(retired.kid, one(&gen0, alg, KeyState::Active).kid);
    }
    assert_eq!(keys.len(), 15, "no extra next keys from the loser");

    // After refresh both instances agree, and sign with the new active keys.
    a.refresh().await.unwrap();
    b.refresh().await.unwrap();
    let etag1 = a.snapshot().jwks_etag().to_owned();
    assert_ne!(etag1, etag0);
    assert_eq!(b.snapshot().jwks_etag(), etag1);
    let es_active = one(&keys, Alg::ES256, KeyState::Active).kid;
    let from_a = a.sign(Alg::ES256, "JWT", &claims(1)).unwrap();
    let from_b = b.sign(Alg::ES256, "JWT", &claims(2)).unwrap();
    assert_eq!(kid_of(&from_a), es_active);
    assert_eq!(kid_of(&from_b), es_active);
    b.verify(&from_a, &[Alg::ES256]).unwrap();
    a.verify(&from_b, &[Alg::ES256]).unwrap();

    // An admin rotation on A: B is stale until it refreshes, then picks it up.
    let done = a.rotate(None, Some(Alg::ES256)).await.unwrap();
    assert_eq!(done.len(), 1);
    let new_active = done[0].1.activated.clone();
    assert_ne!(new_active, es_active);
    assert_eq!(b.snapshot().jwks_etag(), etag1, "no refresh yet");
    let token_by_a = a.sign(Alg::ES256, "JWT", &claims(3)).unwrap();
    assert_eq!(kid_of(&token_by_a), new_active);
    assert!(b.refresh().await.unwrap(), "B sees the keys epoch move");
    assert!(!b.refresh().await.unwrap(), "and only once");
    let etag2 = b.snapshot().jwks_etag().to_owned();
    assert_ne!(etag2, etag1);
    assert_eq!(etag2, a.snapshot().jwks_etag());
    assert_eq!(b.snapshot().epoch(), env.epoch().await);
    assert_eq!(
        kid_of(&b.sign(Alg::ES256, "JWT", &claims(4)).unwrap()),
        new_active
    );
    b.verify(&token_by_a, &[Alg::ES256]).unwrap();
    // B's own tick also picks up the change (it refreshes first) and does nothing else.
    assert!(b.tick().await.unwrap().is_empty());
}

// ---------------------------------------------------------------- 4. rotation under load

async fn rotation_while_signing(env: Env) {
    const SIGNERS: u64 = 4;
    const PER_SIGNER: usize = 200;
    const ROTATIONS: usize = 5;

    let ring = env.ring(every_alg()).await;
    let gen0 = env.keys().await;
    let first_active = one(&gen0, Alg::ES256, KeyState::Active).kid;
    let first_next = one(&gen0, Alg::ES256, KeyState::Next).kid;

    // Every kid any observer has seen in a published JWKS, so far.
    let seen: Arc<Mutex<HashSet<Kid>>> = Arc::new(Mutex::new(jwks_kids(&ring.snapshot())));
    let started = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let mut signers = Vec::new();
    for t in 0..SIGNERS {
        let (ring, seen, started, done) =
            (ring.clone(), seen.clone(), started.clone(), done.clone());
        signers.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            let mut unpublished = Vec::new();
            loop {
                let rotations_over = done.load(Ordering::SeqCst);
                // What had been published before this sign.
                let current = jwks_kids(&ring.snapshot());
                let before: HashSet<Kid> = {
                    let mut s = seen.lock().unwrap();
                    s.extend(current.iter().cloned());
                    s.clone()
                };
                let token = ring
                    .sign(
                        Alg::ES256,
                        "JWT",
                        &claims(t * 1_000_000 + tokens.len() as u64),
                    )
                    .unwrap();
                let kid = kid_of(&token);
                if !before.contains(&kid) {
                    unpublished.push(kid);
                }
                tokens.push((token, rotations_over));
                if tokens.len() == 1 {
                    started.fetch_add(1, Ordering::SeqCst);
                }
                if rotations_over && tokens.len() >= PER_SIGNER {
                    break;
                }
                if tokens.len() >= PER_SIGNER {
                    // Keep signing through the rotations, without piling up tokens.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
            (tokens, unpublished)
        }));
    }

    // Every signer has signed with the first key before the first rotation.
    while started.load(Ordering::SeqCst) < SIGNERS as usize {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut rotations = Vec::new();
    for _ in 0..ROTATIONS {
        let r = ring.rotate(None, Some(Alg::ES256)).await.unwrap();
        assert_eq!(r.len(), 1, "only ES256 rotates: {r:?}");
        assert_eq!(r[0].0, Alg::ES256);
        rotations.push(r[0].1.clone());
        seen.lock().unwrap().extend(jwks_kids(&ring.snapshot()));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    done.store(true, Ordering::SeqCst);

    // Each rotation activated the key the previous one had published as next.
    assert_eq!(rotations[0].activated, first_next);
    assert_eq!(rotations[0].retired.as_deref(), Some(first_active.as_str()));
    for w in rotations.windows(2) {
        assert_eq!(w[1].activated, w[0].next);
        assert_eq!(w[1].retired.as_deref(), Some(w[0].activated.as_str()));
    }
    let final_active = rotations[ROTATIONS - 1].activated.clone();
    let mut ever_active: HashSet<Kid> = rotations.iter().map(|r| r.activated.clone()).collect();
    ever_active.insert(first_active.clone());

    let mut all_tokens: Vec<String> = Vec::new();
    for s in signers {
        let (tokens, unpublished) = s.await.unwrap();
        assert!(
            unpublished.is_empty(),
            "tokens signed with kids not yet published: {unpublished:?}"
        );
        assert!(tokens.len() >= PER_SIGNER);
        // Tokens signed after the last rotation returned use the final key.
        for (token, after) in &tokens {
            if *after {
                assert_eq!(kid_of(token), final_active);
            }
        }
        all_tokens.extend(tokens.into_iter().map(|(t, _)| t));
    }

    // The final ring (retired keys still published) verifies every token.
    let final_kids = jwks_kids(&ring.snapshot());
    let mut used = HashSet::new();
    for token in &all_tokens {
        let kid = kid_of(token);
        assert!(ever_active.contains(&kid), "{kid} was never active");
        assert!(final_kids.contains(&kid));
        ring.verify(token, &[Alg::ES256]).unwrap();
        used.insert(kid);
    }
    assert!(used.contains(&first_active) && used.contains(&final_active));
    assert!(used.len() >= 2, "signing spanned rotations");

    let keys = env.keys().await;
    assert_eq!(count(&keys, Alg::ES256, KeyState::Retired), ROTATIONS);
    assert_eq!(one(&keys, Alg::ES256, KeyState::Active).kid, final_active);
    one(&keys, Alg::ES256, KeyState::Next);
    for alg in all_algs().into_iter().filter(|a| *a != Alg::ES256) {
        assert_eq!(count(&keys, alg, KeyState::Retired), 0, "{alg} untouched");
    }
}

// ---------------------------------------------------------------- revoke vs. poll

/// Once `revoke` has returned, the instance it ran on refuses the key, even
/// when its background poll reloads at the same moment (regression test:
/// an older snapshot used to be put back by the slower reload). The race is
/// timing-dependent, so it is provoked many times over.
async fn revoke_racing_refresh(env: Env) {
    const ROUNDS: u64 = 40;
    let ring = env.ring(every_alg()).await;
    let other = env.ring_on(env.second_store().await, every_alg()).await;
    for i in 0..ROUNDS {
        let token = ring.sign(Alg::ES256, "JWT", &claims(i)).unwrap();
        let kid = kid_of(&token);
        // Another instance changes the keys, so this ring's poll reloads...
        other.rotate(None, Some(Alg::EdDSA)).await.unwrap();
        // ...while an admin revokes the ES256 key through this ring.
        let (poll, admin) = (ring.clone(), ring.clone());
        let (polled, revoked) = tokio::join!(
            tokio::spawn(async move { poll.refresh().await }),
            tokio::spawn(async move { admin.revoke(&kid).await }),
        );
        polled.unwrap().unwrap();
        let rev = revoked.unwrap().unwrap();
        assert_invalid_token(
            ring.verify(&token, &[Alg::ES256]),
            &format!("round {i}: token of the key revoked a moment ago"),
        );
        assert!(!jwks_kids(&ring.snapshot()).contains(&rev.kid), "round {i}");
        let signed = ring.sign(Alg::ES256, "JWT", &claims(i)).unwrap();
        assert_eq!(Some(kid_of(&signed)), rev.activated, "round {i}");
        assert_eq!(ring.snapshot().epoch(), env.epoch().await, "round {i}");
    }
}
