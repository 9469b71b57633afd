use super::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims() -> AccessClaims {
    let t = now();
    AccessClaims {
        iss: "iss".into(),
        aud: "aud".into(),
        sub: Uuid::now_v7(),
        sid: Uuid::now_v7(),
        role: "user".into(),
        iat: t,
        nbf: t,
        exp: t + 900,
        jti: Uuid::now_v7(),
    }
}

fn verifier(signer: &Signer) -> Verifier {
    Verifier::new(&[signer.public_key().clone()], "iss", "aud").unwrap()
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

#[test]
fn a_signed_token_verifies_and_round_trips_its_claims() {
    let signer = Signer::generate();
    let c = claims();
    let token = signer.sign(&c).unwrap();
    assert_eq!(verifier(&signer).verify(&token).unwrap(), c);
}

#[test]
fn a_pem_key_round_trips() {
    let pem = Signer::generate_pem();
    let a = Signer::from_pem(&pem).unwrap();
    let b = Signer::from_pem(&pem).unwrap();
    assert_eq!(a.public_key(), b.public_key());
    assert!(
        Signer::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err()
    );
    assert_eq!(
        PublicKey::from_x(&a.public_key().x).unwrap(),
        *a.public_key()
    );
}

#[test]
fn alg_none_is_refused() {
    let signer = Signer::generate();
    let header =
        serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": signer.public_key().kid});
    let token = format!(
        "{}.{}.",
        b64(&header),
        b64(&serde_json::to_value(claims()).unwrap())
    );
    assert!(verifier(&signer).verify(&token).is_err());
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let signer = Signer::generate();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some(ACCESS_TOKEN_TYPE.into());
    header.kid = Some(signer.public_key().kid.clone());
    let key = EncodingKey::from_secret(signer.public_key().x.as_bytes());
    let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    assert!(verifier(&signer).verify(&token).is_err());
}

#[test]
fn an_unknown_kid_or_a_foreign_key_is_refused() {
    let ours = Signer::generate();
    let theirs = Signer::generate();
    let token = theirs.sign(&claims()).unwrap();
    assert!(matches!(
        verifier(&ours).verify(&token),
        Err(TokenError::UnknownKey)
    ));
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let signer = Signer::generate();
    let mut c = claims();
    c.exp = now() - 60;
    assert!(verifier(&signer).verify(&signer.sign(&c).unwrap()).is_err());
    let mut c = claims();
    c.nbf = now() + 600;
    assert!(verifier(&signer).verify(&signer.sign(&c).unwrap()).is_err());
}

#[test]
fn wrong_or_missing_iss_and_aud_are_refused() {
    let signer = Signer::generate();
    let mut c = claims();
    c.aud = "other".into();
    assert!(verifier(&signer).verify(&signer.sign(&c).unwrap()).is_err());
    let mut c = claims();
    c.iss = "other".into();
    assert!(verifier(&signer).verify(&signer.sign(&c).unwrap()).is_err());

    // The same claims without aud/iss at all, signed properly.
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(ACCESS_TOKEN_TYPE.into());
    header.kid = Some(signer.public_key().kid.clone());
    let mut value = serde_json::to_value(claims()).unwrap();
    value.as_object_mut().unwrap().remove("aud");
    let token = jsonwebtoken::encode(&header, &value, &signer.key).unwrap();
    assert!(verifier(&signer).verify(&token).is_err());
    let mut value = serde_json::to_value(claims()).unwrap();
    value.as_object_mut().unwrap().remove("iss");
    let token = jsonwebtoken::encode(&header, &value, &signer.key).unwrap();
    assert!(verifier(&signer).verify(&token).is_err());
}

#[test]
fn a_token_of_another_type_is_refused() {
    let signer = Signer::generate();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("JWT".into());
    header.kid = Some(signer.public_key().kid.clone());
    let token = jsonwebtoken::encode(&header, &claims(), &signer.key).unwrap();
    assert!(verifier(&signer).verify(&token).is_err());
}

#[test]
fn a_tampered_payload_is_refused() {
    let signer = Signer::generate();
    let token = signer.sign(&claims()).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut c = claims();
    c.role = "admin".into();
    parts[1] = b64(&serde_json::to_value(c).unwrap());
    assert!(verifier(&signer).verify(&parts.join(".")).is_err());
}

#[test]
fn garbage_is_refused() {
    let signer = Signer::generate();
    for junk in ["", "a.b.c", "not a token", "rt_abcdef"] {
        assert!(verifier(&signer).verify(junk).is_err());
    }
}
